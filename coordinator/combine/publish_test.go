package combine_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/coordinator/query"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// meanwhile is a store on which something else happens right after a combine has listed the
// submissions and before it reads them: the combine goes on with that listing, as a long
// combine does while the store changes under it.
type meanwhile struct {
	objstore.Store
	once sync.Once
	fn   func()
}

func (m *meanwhile) List(ctx context.Context, prefix string) ([]objstore.Info, error) {
	infos, err := m.Store.List(ctx, prefix)
	if prefix == formats.PracticesPrefix {
		m.once.Do(m.fn)
	}
	return infos, err
}

// TestNewerCombineIsNeverReplaced: a manual combine runs while the service combines too. The
// one that started first, from older submissions, finishes last; it must not replace the
// newer figures the other published meanwhile, and must say so. The same holds the other way
// round, since both are combine.Run.
func TestNewerCombineIsNeverReplaced(t *testing.T) {
	ctx := context.Background()
	st, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fed := fedgen.New(fedgen.Params{Practices: 3, Months: 3, Seed: 4})
	if err := fed.Write(ctx, st, 2); err != nil {
		t.Fatal(err)
	}
	pub := fed.Coordinator.Public().(ed25519.PublicKey)
	if _, err := combine.Run(ctx, st, pub, combine.Options{}); err != nil {
		t.Fatal(err)
	}

	var newer *combine.Result
	slow := &meanwhile{Store: st, fn: func() {
		// A new month lands and the other combine publishes it.
		p := fed.Practices[0]
		sub := fedgen.Publish(fed.Policy, p.ID, "20260401T000000Z-0000cafe", fed.Start+3, fed.Start+3, formats.Measures,
			func(m formats.Month, measure string, b, x int) int64 { return fed.True(0, m, measure, b, x) })
		if _, err := fedgen.WriteSubmission(ctx, st, p.Key, p.Created.Add(time.Hour), sub); err != nil {
			t.Error(err)
			return
		}
		if newer, err = combine.Run(ctx, st, pub, combine.Options{}); err != nil {
			t.Error(err)
		}
	}}
	_, err = combine.Run(ctx, slow, pub, combine.Options{})
	if newer == nil {
		t.Fatal("the other combine did not run")
	}
	if !errors.Is(err, combine.ErrSuperseded) || !strings.Contains(err.Error(), newer.Pointer.ID) {
		t.Fatalf("the older combine finished with %v; want ErrSuperseded naming the combine published meanwhile (%s)", err, newer.Pointer.ID)
	}
	t.Logf("the older combine said: %v", err)
	c, err := query.Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if c.Pointer.ID != newer.Pointer.ID || c.Pointer.LastMonth != (fed.Start+3).String() {
		t.Errorf("current.json names %s up to %s; want the newer combine %s up to %s", c.Pointer.ID, c.Pointer.LastMonth, newer.Pointer.ID, fed.Start+3)
	}

	// Combining again publishes, from everything now in the store.
	again, err := combine.Run(ctx, st, pub, combine.Options{})
	if err != nil || again.Pointer.ID != newer.Pointer.ID {
		t.Errorf("combining again: %v, id %v; want the newer figures again", err, again)
	}
}

// TestSameOutputMeanwhileIsNoConflict: when the combine that published meanwhile made the
// very same output (it saw the same submissions), there is nothing to refuse.
func TestSameOutputMeanwhileIsNoConflict(t *testing.T) {
	ctx := context.Background()
	st, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fed := fedgen.New(fedgen.Params{Practices: 2, Months: 2, Seed: 5})
	if err := fed.Write(ctx, st, 1); err != nil {
		t.Fatal(err)
	}
	pub := fed.Coordinator.Public().(ed25519.PublicKey)
	var other *combine.Result
	slow := &meanwhile{Store: st, fn: func() {
		if other, err = combine.Run(ctx, st, pub, combine.Options{}); err != nil {
			t.Error(err)
		}
	}}
	res, err := combine.Run(ctx, slow, pub, combine.Options{})
	if err != nil || other == nil || res.Pointer.ID != other.Pointer.ID {
		t.Fatalf("a combine beside another of the same submissions: %v; want the same output published once", err)
	}
	h, err := combine.ReadHistory(ctx, st)
	if err != nil || len(h.Outputs) != 1 {
		t.Errorf("history: %+v, %v; want the one output", h, err)
	}
}
