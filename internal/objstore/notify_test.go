package objstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tributary-health/tributary/internal/miniotest"
	"github.com/tributary-health/tributary/internal/objstore"
)

// TestNotifyOnPinnedMinIO records what the MinIO build the project pins does with a
// notification subscription: it accepts it but holds the stream back (it is written out only
// once 4 KiB have gathered: some 240 keep-alives, or four events), so the subscription says
// "not delivering" and an upload does not wake the subscriber. coordinator/server/README.md
// says that updates then follow --interval. If this test fails because notifications now
// arrive, the pinned build delivers them: change the README and this test.
func TestNotifyOnPinnedMinIO(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a silent subscription")
	}
	srv := miniotest.Shared(t)
	st := srv.Store(t, "")
	n, ok := st.(objstore.Notifier)
	if !ok {
		t.Fatal("an S3 store is not an objstore.Notifier")
	}
	defer objstore.SetNotifyTiming(time.Second, time.Second, time.Second)()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var states []objstore.NotifyState
	wake := n.Notify(ctx, []string{"practices/"}, func(s objstore.NotifyState) {
		mu.Lock()
		states = append(states, s)
		mu.Unlock()
	})
	last := func() objstore.NotifyState {
		mu.Lock()
		defer mu.Unlock()
		if len(states) == 0 {
			return objstore.NotifyState{}
		}
		return states[len(states)-1]
	}
	deadline := time.Now().Add(10 * time.Second)
	for last().Reason == "" || last().Reason == "subscribing; nothing received from the server yet" {
		if time.Now().After(deadline) {
			t.Fatalf("no verdict on the subscription after 10 s: %+v", states)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s := last(); s.State != objstore.NotifySilent {
		t.Fatalf("the subscription is %q (%s): the pinned MinIO now delivers; update coordinator/server/README.md and this test", s.State, s.Reason)
	}
	t.Logf("subscription: %s: %s", last().State, last().Reason)
	if _, err := st.Put(ctx, "practices/A81001/runs/20260101T000000Z-0123abcd/manifest.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
		t.Errorf("an upload woke the subscriber: the pinned MinIO now delivers; update coordinator/server/README.md and this test")
	case <-time.After(3 * time.Second):
		t.Log("an upload did not wake the subscriber within 3 s")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range states {
		if s.State == objstore.NotifyLive {
			t.Errorf("the subscription was live at %s", s.Since)
		}
	}
}
