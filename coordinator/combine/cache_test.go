package combine_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
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
	// One file per practice's run.
	if cache.Hits() != 0 || cache.Len() != 3 {
		t.Fatalf("first run: %d hits, %d cached; want 0 and 3", cache.Hits(), cache.Len())
	}
	again, err := combine.Run(ctx, st, pub, combine.Options{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if cache.Hits() != 3 || again.Pointer.ID != first.Pointer.ID || cache.TableHits() != 3 {
		t.Fatalf("second run: %d hits (want 3), %d tables reused (want 3), id %s (want %s)", cache.Hits(), cache.TableHits(), again.Pointer.ID, first.Pointer.ID)
	}

	// A new run of one practice for one month: only that file is read, and the practice's
	// older run, still newest for its other months, comes from the cache.
	p := fed.Practices[1]
	sub := fedgen.Publish(fed.Policy, p.ID, "20260301T000000Z-0000beef", fed.Start+2, fed.Start+2, formats.Measures,
		func(m formats.Month, measure string, b, x int) int64 { return fed.True(1, m, measure, b, x) + 1 })
	if _, err := fedgen.WriteSubmission(ctx, st, p.Key, p.Created.Add(time.Hour), sub); err != nil {
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
	if cache.Hits() != 3 || cache.Len() != 4 || inc.Pointer.ID != fresh.Pointer.ID || inc.Pointer.ID == first.Pointer.ID {
		t.Fatalf("after a new run: %d hits (want 3), %d cached (want 4), id %s, fresh id %s", cache.Hits(), cache.Len(), inc.Pointer.ID, fresh.Pointer.ID)
	}
	// Only the practice with the new run has a new table; the others' are reused, and every
	// table the two combines name is the same.
	if cache.TableHits() != 2 {
		t.Errorf("after a new run: %d practice tables reused, want 2", cache.TableHits())
	}
	for id, ref := range fresh.Pointer.PracticeTables {
		if inc.Pointer.PracticeTables[id] != ref {
			t.Errorf("practice %s: cached combine names table %+v, fresh one %+v", id, inc.Pointer.PracticeTables[id], ref)
		}
	}
	if inc.Pointer.PracticeTables[p.ID] == first.Pointer.PracticeTables[p.ID] {
		t.Errorf("practice %s has a new run but kept its old table", p.ID)
	}
	if inc.Report.FilesCombined != 4 || inc.Report.MonthsCombined != 12 {
		t.Fatalf("after a new run: %d files, %d practice-months combined; want 4 and 12", inc.Report.FilesCombined, inc.Report.MonthsCombined)
	}
	a, _, _ := st.Get(ctx, inc.Pointer.Objects[combine.FederationArrow].Key, 1<<30)
	b, _, _ := st.Get(ctx, fresh.Pointer.Objects[combine.FederationArrow].Key, 1<<30)
	if !bytes.Equal(a, b) {
		t.Fatal("cached and fresh combines wrote different federation tables")
	}

	// A reused table deleted from the store is written again, not named while missing.
	gone := inc.Pointer.PracticeTables[fed.Practices[2].ID]
	if err := st.Delete(ctx, gone.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := combine.Run(ctx, st, pub, combine.Options{Cache: cache}); err != nil {
		t.Fatal(err)
	}
	if got, _, err := st.Get(ctx, gone.Key, 1<<30); err != nil || cache.TableHits() != 2 {
		t.Fatalf("a deleted practice table: %d reused (want 2), stored again: %d bytes, %v", cache.TableHits(), len(got), err)
	}

	// A combined file rewritten after it was verified, to the same size, is read again and
	// quarantined.
	key := formats.SubmissionKey(fed.Practices[0].ID, fed.Practices[0].RunID)
	data, _, err := st.Get(ctx, key, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 0xff
	info, err := st.Put(ctx, key, data)
	if err != nil {
		t.Fatal(err)
	}
	// A clearly later modification time, as a rewrite gets, however coarse the file system's
	// clock.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(st.Root(), filepath.FromSlash(info.Key)), later, later); err != nil {
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
	if !found || cache.Hits() != 3 {
		t.Fatalf("a file rewritten after verification was not read again (%d hits) and quarantined; quarantine: %+v", cache.Hits(), res.Report.Quarantined)
	}
}
