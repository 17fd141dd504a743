package combine_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// A cached combine gives the same outputs as a fresh one, reads only files it has not
// verified before, and re-verifies (and quarantines) a file rewritten in the store.
func TestCacheIncremental(t *testing.T) {
	ctx := context.Background()
	st, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fed := fedgen.New(fedgen.Params{Practices: 3, Months: 4, Seed: 9})
	if err := fed.Write(ctx, st, 2); err != nil {
		t.Fatal(err)
	}
	pub := fed.Coordinator.Public().(ed25519.PublicKey)
	cache := combine.NewCache()
	first, err := combine.Run(ctx, st, pub, combine.Options{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if cache.Hits() != 0 || cache.Len() != 12 {
		t.Fatalf("first run: %d hits, %d cached; want 0 and 12", cache.Hits(), cache.Len())
	}
	again, err := combine.Run(ctx, st, pub, combine.Options{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if cache.Hits() != 12 || again.Pointer.ID != first.Pointer.ID {
		t.Fatalf("second run: %d hits (want 12), id %s (want %s)", cache.Hits(), again.Pointer.ID, first.Pointer.ID)
	}

	// A new run of one practice for one month: only that file is read.
	p := fed.Practices[1]
	sub := fed.Submission(1, fed.Start+2)
	sub.RunID = "20260301T000000Z-0000beef"
	if _, err := fedgen.WriteSubmissions(ctx, st, p.Key, p.Created.Add(time.Hour), sub); err != nil {
		t.Fatal(err)
	}
	inc, err := combine.Run(ctx, st, pub, combine.Options{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := combine.Run(ctx, st, pub, combine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if cache.Hits() != 11 || inc.Pointer.ID != fresh.Pointer.ID || inc.Pointer.ID == first.Pointer.ID {
		t.Fatalf("after a new run: %d hits (want 11), id %s, fresh id %s", cache.Hits(), inc.Pointer.ID, fresh.Pointer.ID)
	}
	a, _, _ := st.Get(ctx, inc.Pointer.Objects[combine.FederationArrow].Key, 1<<30)
	b, _, _ := st.Get(ctx, fresh.Pointer.Objects[combine.FederationArrow].Key, 1<<30)
	if !bytes.Equal(a, b) {
		t.Fatal("cached and fresh combines wrote different federation tables")
	}

	// A combined file rewritten after it was verified is read again and quarantined.
	key := formats.SubmissionKey(fed.Practices[0].ID, fed.Practices[0].RunID, fed.Start)
	data, _, err := st.Get(ctx, key, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // a later modification time on coarse clocks
	data[len(data)-1] ^= 0xff
	if _, err := st.Put(ctx, key, data); err != nil {
		t.Fatal(err)
	}
	res, err := combine.Run(ctx, st, pub, combine.Options{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, q := range res.Report.Quarantined {
		found = found || q.Key == key
	}
	if !found {
		t.Fatalf("a file rewritten after verification was not quarantined; quarantine: %+v", res.Report.Quarantined)
	}
}
