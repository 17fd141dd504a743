package server

import (
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/coordinator/query"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/internal/testenv"
)

// meanwhile is a store on which something else happens right after the server's combine has
// listed the submissions, before it reads them: on the second listing of a refresh, the first
// being the one that tells the server the store changed.
type meanwhile struct {
	objstore.Store
	mu    sync.Mutex
	lists int
	fn    func()
}

func (m *meanwhile) List(ctx context.Context, prefix string) ([]objstore.Info, error) {
	infos, err := m.Store.List(ctx, prefix)
	if prefix == formats.PracticesPrefix {
		m.mu.Lock()
		m.lists++
		second := m.lists == 2
		m.mu.Unlock()
		if second {
			m.fn()
		}
	}
	return infos, err
}

// TestServeBesideManualCombine: while the service combines, a new month lands and a lead's
// manual combine publishes it. The service's combine, made from the older listing, must not
// replace those figures; it combines again and serves (and publishes) figures that include
// the new month.
func TestServeBesideManualCombine(t *testing.T) {
	ctx := context.Background()
	dir, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fed := fedgen.New(fedgen.Params{Practices: 3, Months: 3, Seed: 4, Start: formats.MonthFor(2024, time.January)})
	if err := fed.Write(ctx, dir, 2); err != nil {
		t.Fatal(err)
	}
	pub := fed.Coordinator.Public().(ed25519.PublicKey)
	var manual *combine.Result
	st := &meanwhile{Store: dir, fn: func() {
		p := fed.Practices[0]
		sub := fedgen.Publish(fed.Policy, p.ID, "20260401T000000Z-0000cafe", fed.Start+3, fed.Start+3, formats.Measures,
			func(m formats.Month, measure string, b, x int) int64 { return fed.True(0, m, measure, b, x) })
		if _, err := fedgen.WriteSubmission(ctx, dir, p.Key, p.Created.Add(time.Hour), sub); err != nil {
			t.Error(err)
			return
		}
		if manual, err = combine.Run(ctx, dir, pub, combine.Options{}); err != nil {
			t.Error(err)
		}
	}}
	toks, err := OpenTokens(filepath.Join(t.TempDir(), "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{Store: st, Coordinator: pub, Tokens: toks, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.LogBuffer{}
	srv.opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	if err := srv.Refresh(ctx); err != nil {
		t.Fatalf("Refresh beside a manual combine: %v", err)
	}
	if !strings.Contains(logs.String(), "another combine published while this one ran; combining again") {
		t.Errorf("the server's log does not say it combined again:\n%s", logs)
	}
	if manual == nil {
		t.Fatal("the manual combine did not run")
	}
	c, err := query.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	last := (fed.Start + 3).String()
	if c.Pointer.LastMonth != last {
		t.Errorf("current.json names figures up to %s; want %s, which the manual combine published", c.Pointer.LastMonth, last)
	}
	if got := srv.Status().Combined; got != c.Pointer.ID || srv.snap.Load().ptr.LastMonth != last {
		t.Errorf("the server serves %s up to %s; want what current.json names (%s, up to %s)", got, srv.snap.Load().ptr.LastMonth, c.Pointer.ID, last)
	}
}
