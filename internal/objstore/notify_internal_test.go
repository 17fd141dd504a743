package objstore

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeListen is an S3 server that answers ListenBucketNotification the way its handler says:
// 200 and a stream it controls, or an error.
type fakeListen struct {
	t       *testing.T
	status  int    // when not 200, the answer to every subscription
	code    string // its S3 error code
	streams chan chan string
	hits    chan url.Values
}

func (f *fakeListen) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=ak/") {
		f.t.Errorf("unsigned subscription: %q", r.Header.Get("Authorization"))
	}
	select {
	case f.hits <- r.URL.Query():
	default:
	}
	if f.status != http.StatusOK {
		w.WriteHeader(f.status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>no</Message></Error>`, f.code)
		return
	}
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	lines := make(chan string)
	select {
	case f.streams <- lines:
	case <-r.Context().Done():
		return
	}
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				return // the server ends the subscription
			}
			fmt.Fprint(w, l)
			w.(http.Flusher).Flush()
		case <-r.Context().Done():
			return
		}
	}
}

func fastNotify(t *testing.T) {
	saved := [3]time.Duration{pingEvery, resubscribeMin, resubscribeMax}
	pingEvery, resubscribeMin, resubscribeMax = 100*time.Millisecond, 50*time.Millisecond, 100*time.Millisecond
	t.Cleanup(func() { pingEvery, resubscribeMin, resubscribeMax = saved[0], saved[1], saved[2] })
}

func fakeStore(t *testing.T, f *fakeListen) *S3 {
	t.Helper()
	hs := httptest.NewServer(f)
	t.Cleanup(hs.Close)
	u, _ := url.Parse(hs.URL)
	st, err := Open(context.Background(), "s3://bucket?endpoint="+u.Host+"&insecure=true&region=us-east-1", Options{AccessKey: "ak", SecretKey: "sk"})
	if err != nil {
		t.Fatal(err)
	}
	return st.(*S3)
}

// states records a subscription's states.
type states struct {
	mu  sync.Mutex
	all []NotifyState
	ch  chan NotifyState
}

func newStates() *states { return &states{ch: make(chan NotifyState, 100)} }

func (s *states) report(n NotifyState) {
	s.mu.Lock()
	s.all = append(s.all, n)
	s.mu.Unlock()
	s.ch <- n
}

// await waits for a state (and a reason containing reason), failing after limit.
func (s *states) await(t *testing.T, state, reason string, limit time.Duration) NotifyState {
	t.Helper()
	deadline := time.After(limit)
	for {
		select {
		case n := <-s.ch:
			if n.State == state && strings.Contains(n.Reason, reason) {
				return n
			}
		case <-deadline:
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Fatalf("no state %q (%q) within %s; states so far: %+v", state, reason, limit, s.all)
			return NotifyState{}
		}
	}
}

// TestNotifyStates follows one subscription through the states the server's behaviour puts it
// in: waiting, live while pings come on time, woken by events under the prefixes only, not
// delivering when the pings stop, off when the server drops it, and live again after
// subscribing anew.
func TestNotifyStates(t *testing.T) {
	fastNotify(t)
	f := &fakeListen{t: t, status: http.StatusOK, streams: make(chan chan string), hits: make(chan url.Values, 10)}
	s := fakeStore(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := newStates()
	wake := s.Notify(ctx, []string{"practices/", "federation/registry.json"}, st.report)
	q := <-f.hits
	if q.Get("prefix") != "" || q.Get("ping") != "0" && q.Get("ping") == "" || len(q["events"]) != 2 {
		t.Errorf("subscription query %v", q)
	}
	stream := <-f.streams
	st.await(t, NotifySilent, "nothing received from the server yet", time.Second)

	pings := make(chan struct{})
	go func() { // pings on time
		tk := time.NewTicker(pingEvery)
		defer tk.Stop()
		for {
			select {
			case <-pings:
				return
			case <-tk.C:
				select {
				case stream <- "{\"Records\":null}\n":
				case <-pings:
					return
				}
			}
		}
	}()
	st.await(t, NotifyLive, "", 2*time.Second)

	event := func(key string) string {
		return `{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"object":{"key":"` + url.QueryEscape(key) + `"}}}]}` + "\n"
	}
	stream <- event("federation/combined/abc/report.json") // the coordinator's own output
	select {
	case <-wake:
		t.Error("an event outside the prefixes woke the subscriber")
	case <-time.After(3 * pingEvery):
	}
	stream <- event("practices/A81001/runs/20260101T000000Z-0123abcd/manifest.json")
	select {
	case <-wake:
	case <-time.After(2 * time.Second):
		t.Fatal("an event under practices/ did not wake the subscriber")
	}
	stream <- event("federation/registry.json")
	select {
	case <-wake:
	case <-time.After(2 * time.Second):
		t.Fatal("a registry change did not wake the subscriber")
	}

	close(pings) // the server holds the stream back
	n := st.await(t, NotifySilent, "nothing received from the server for", 2*time.Second)
	t.Logf("silent: %s", n.Reason)

	close(stream) // the server drops the subscription
	n = st.await(t, NotifyOff, "subscribing again", 2*time.Second)
	t.Logf("dropped: %s", n.Reason)
	stream = <-f.streams // subscribed again
	for range 3 {
		stream <- "{\"Records\":null}\n"
		time.Sleep(pingEvery)
	}
	st.await(t, NotifyLive, "", 2*time.Second)
	cancel()
	select {
	case _, ok := <-wake:
		if ok {
			<-wake
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the channel is not closed when the context ends")
	}
}

// TestNotifyHeldBack: a server that holds the stream back and releases it in bursts (the
// pinned MinIO build does so until 4 KiB gather) is not live, however much each burst holds.
func TestNotifyHeldBack(t *testing.T) {
	fastNotify(t)
	f := &fakeListen{t: t, status: http.StatusOK, streams: make(chan chan string), hits: make(chan url.Values, 10)}
	s := fakeStore(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := newStates()
	s.Notify(ctx, []string{"practices/"}, st.report)
	stream := <-f.streams
	for range 3 {
		time.Sleep(5 * pingEvery) // the pings due meanwhile, all at once
		stream <- strings.Repeat("{\"Records\":null}\n", 5)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, n := range st.all {
		if n.State == NotifyLive {
			t.Fatalf("a stream released in late bursts counted as live: %+v", st.all)
		}
	}
	if last := st.all[len(st.all)-1]; last.State != NotifySilent {
		t.Errorf("state %+v, want %s", last, NotifySilent)
	}
}

// TestNotifyRefused: a refused subscription is off and says why; one the server does not
// offer at all is not tried again, and its channel closes.
func TestNotifyRefused(t *testing.T) {
	fastNotify(t)
	for _, c := range []struct {
		status    int
		code      string
		reason    string
		permanent bool
	}{
		{http.StatusForbidden, "AccessDenied", "AccessDenied", false},
		{http.StatusNotImplemented, "NotImplemented", "does not offer bucket notifications", true},
	} {
		t.Run(c.code, func(t *testing.T) {
			f := &fakeListen{t: t, status: c.status, code: c.code, hits: make(chan url.Values, 10)}
			s := fakeStore(t, f)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			st := newStates()
			wake := s.Notify(ctx, []string{"practices/"}, st.report)
			n := st.await(t, NotifyOff, c.reason, 2*time.Second)
			t.Logf("%s", n.Reason)
			if c.permanent {
				select {
				case _, ok := <-wake:
					if ok {
						t.Error("a wake-up from a refused subscription")
					}
				case <-time.After(2 * time.Second):
					t.Error("the channel of a store without notifications stays open")
				}
				if len(f.hits) != 1 {
					t.Errorf("%d subscriptions to a server without notifications, want 1", len(f.hits))
				}
			} else if !strings.Contains(n.Reason, "subscribing again") {
				t.Errorf("reason %q does not say it tries again", n.Reason)
			}
		})
	}
}
