package server

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/internal/testenv"
)

// notifying is a store that offers notifications the test sends, in the states it chooses.
type notifying struct {
	objstore.Store
	subscribed chan []string
	events     chan struct{}
	state      func(objstore.NotifyState)
	mu         sync.Mutex
}

func (n *notifying) Notify(ctx context.Context, prefixes []string, state func(objstore.NotifyState)) <-chan struct{} {
	n.mu.Lock()
	n.state = state
	n.mu.Unlock()
	n.subscribed <- prefixes
	return n.events
}

func (n *notifying) set(state, reason string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.state(objstore.NotifyState{State: state, Reason: reason, Since: time.Now().UTC()})
}

var _ objstore.Notifier = (*notifying)(nil)

// TestServerSubscribesThroughItsStore: the server subscribes to its store's notifications
// itself (no second client with its own reading of the store URL), to new submissions and
// registry changes; a notification makes it combine at once, long before its interval; and
// the subscription's state is logged and shown at /api/status as it changes.
func TestServerSubscribesThroughItsStore(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fed := fedgen.New(fedgen.Params{Practices: 2, Months: 2, Seed: 3, Start: formats.MonthFor(2024, time.January)})
	if err := fed.Write(ctx, dir, 1); err != nil {
		t.Fatal(err)
	}
	st := &notifying{Store: dir, subscribed: make(chan []string, 1), events: make(chan struct{}, 1)}
	toks, err := OpenTokens(filepath.Join(t.TempDir(), "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.LogBuffer{}
	srv, err := New(Options{Store: st, Coordinator: fed.Coordinator.Public().(ed25519.PublicKey), Tokens: toks,
		Interval: time.Hour, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { srv.Run(ctx) })
	select {
	case prefixes := <-st.subscribed:
		if strings.Join(prefixes, " ") != formats.PracticesPrefix+" "+formats.RegistryKey {
			t.Errorf("subscribed to %q; want new submissions and the registry", prefixes)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not subscribe to its store's notifications")
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: status %+v", what, srv.Status())
			}
		}
	}
	waitFor("the first combine", func() bool { return srv.Status().Combines == 1 })

	for _, c := range []struct{ state, reason, log string }{
		{objstore.NotifySilent, "subscribing", "subscribing to the store's notifications"},
		{objstore.NotifyLive, "", "store notifications live"},
		{objstore.NotifySilent, "nothing received from the server for over 30s", "store notifications not delivering"},
		{objstore.NotifyOff, "AccessDenied", "store notifications off"},
	} {
		st.set(c.state, c.reason)
		if got := srv.Status().Notifications; got.State != c.state || got.Reason != c.reason {
			t.Errorf("status notifications %+v; want %s (%s)", got, c.state, c.reason)
		}
		if !strings.Contains(logs.String(), c.log) {
			t.Errorf("the log does not say %q:\n%s", c.log, logs)
		}
	}
	if !strings.Contains(logs.String(), "interval=1h0m0s") {
		t.Errorf("the log does not say how often the store is listed instead:\n%s", logs)
	}

	// A new month, and its notification: combined at once, not in an hour.
	p := fed.Practices[0]
	sub := fedgen.Publish(fed.Policy, p.ID, "20260501T000000Z-00001234", fed.Start+2, fed.Start+2, formats.Measures,
		func(m formats.Month, measure string, b, x int) int64 { return fed.True(0, m, measure, b, x) })
	if _, err := fedgen.WriteSubmission(ctx, dir, p.Key, p.Created.Add(time.Hour), sub); err != nil {
		t.Fatal(err)
	}
	st.events <- struct{}{}
	waitFor("a combine after the notification", func() bool { return srv.Status().Combines == 2 })
}
