package objstore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/signer"
)

// Notifier is implemented by stores that can announce changes as they happen: an S3 store
// on a MinIO server, through its bucket notifications. A store without it (a directory) is
// known to change only by looking.
type Notifier interface {
	// Notify subscribes to the creation and removal of objects whose keys start with one of
	// prefixes, until ctx is done. The channel receives a value after such changes (at most
	// one waits: several changes may share it) and is closed when ctx is done or the server
	// turns out not to offer notifications at all. state, if
	// not nil, is called from the subscription's goroutine with its first state and each
	// time the state changes. A subscription that fails is made again after a pause, for
	// as long as ctx lasts; meanwhile its state says why it is off.
	Notify(ctx context.Context, prefixes []string, state func(NotifyState)) <-chan struct{}
}

// States of a subscription to notifications.
const (
	// NotifyLive: the server delivers, as they happen, its keep-alive pings and so, by
	// all appearances, its notifications.
	NotifyLive = "live"
	// NotifySilent: subscribed, but what the server should send does not arrive when due:
	// notifications are late or never come. A caller that also looks on an interval
	// depends on that interval.
	NotifySilent = "not delivering"
	// NotifyOff: not subscribed: the store cannot notify, or the server refused or dropped
	// the subscription (Reason says which) and it has not been made again yet.
	NotifyOff = "off"
)

// NotifyState is the state of a subscription to a store's notifications.
type NotifyState struct {
	State  string    `json:"state"` // NotifyLive, NotifySilent or NotifyOff
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"`
}

// Timing of S3 notification subscriptions; tests shorten them.
var (
	// pingEvery is the keep-alive interval asked of the server.
	pingEvery = 10 * time.Second
	// resubscribeMin and resubscribeMax bound the pause before a failed subscription is
	// made again; it doubles after each failure.
	resubscribeMin = 5 * time.Second
	resubscribeMax = 5 * time.Minute
)

// Notify listens to the bucket's notifications with MinIO's ListenBucketNotification API,
// asking for a keep-alive ping every 10 s. minio-go drops the pings, so this makes the
// request itself: the pings are what tell a live subscription from one whose server holds
// everything back (some MinIO builds buffer the stream until 4 KiB have gathered, so a
// notification may arrive minutes late or never). The subscription counts as live once
// two pings, or events, have arrived separately and on time; as not delivering while
// nothing has arrived for three ping intervals, or everything arrives in one late burst.
func (s *S3) Notify(ctx context.Context, prefixes []string, state func(NotifyState)) <-chan struct{} {
	out := make(chan struct{}, 1)
	w := &watch{s: s, prefixes: prefixes, report: state, out: out,
		ping: pingEvery, silent: 3 * pingEvery, pauseMin: resubscribeMin, pauseMax: resubscribeMax}
	go w.run(ctx)
	return out
}

var _ Notifier = (*S3)(nil)

type watch struct {
	s        *S3
	prefixes []string
	report   func(NotifyState)
	out      chan struct{}
	cur      NotifyState
	// ping is the keep-alive interval asked for; silent how long the subscription may go
	// without hearing from the server before it counts as not delivering.
	ping, silent       time.Duration
	pauseMin, pauseMax time.Duration
}

func (w *watch) set(state, reason string) {
	if state == w.cur.State && reason == w.cur.Reason {
		return
	}
	w.cur = NotifyState{State: state, Reason: reason, Since: time.Now().UTC()}
	if w.report != nil {
		w.report(w.cur)
	}
}

func (w *watch) run(ctx context.Context) {
	defer close(w.out)
	pause := w.pauseMin
	for ctx.Err() == nil {
		err := w.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		var perm *permanent
		if errors.As(err, &perm) {
			w.set(NotifyOff, err.Error())
			return
		}
		w.set(NotifyOff, fmt.Sprintf("%v; subscribing again in %s", err, roughly(pause)))
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, w.pauseMax)
	}
}

// roughly rounds d for a message.
func roughly(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}

// permanent is a refusal that subscribing again will not change.
type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// arrival is something the server sent: a ping, or events (records > 0) of matching keys.
type arrival struct {
	at      time.Time
	matches bool
}

// listen makes one subscription and follows it until it ends; the error says why it ended.
func (w *watch) listen(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := w.request(ctx)
	if err != nil {
		return err
	}
	// Nothing may come for a long time, headers included: no response timeout.
	tr := w.s.tr.Clone()
	tr.ResponseHeaderTimeout = 0
	tr.DisableCompression = true // a compressed stream is held back until a block fills
	defer tr.CloseIdleConnections()
	w.set(NotifySilent, "subscribing; nothing received from the server yet")
	// The answer's headers may be held back with the stream, so the clock runs from the
	// request, and the request runs beside it.
	subscribed := time.Now()
	type answer struct {
		resp *http.Response
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr}).Do(req)
		answered <- answer{resp, err}
	}()
	waiting := answered // nil once answered
	var body io.Closer
	defer func() {
		cancel()
		if waiting != nil {
			if a := <-waiting; a.resp != nil {
				a.resp.Body.Close()
			}
		} else if body != nil {
			body.Close()
		}
	}()
	arrivals := make(chan arrival, 64)
	ended := make(chan error, 1)
	tick := time.NewTicker(w.ping / 2)
	defer tick.Stop()
	var last, prev time.Time // the last two separate arrivals
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case a := <-waiting:
			waiting = nil
			if a.err != nil {
				return w.s.error("listen", w.s.bucket, a.err)
			}
			body = a.resp.Body
			if a.resp.StatusCode != http.StatusOK {
				return w.refused(a.resp)
			}
			go func() { ended <- w.read(ctx, a.resp.Body, arrivals) }()
			continue
		case err := <-ended:
			if err == nil {
				err = errors.New("the server ended the subscription")
			}
			return fmt.Errorf("store notifications: %w", err)
		case a := <-arrivals:
			if a.matches {
				select {
				case w.out <- struct{}{}:
				default: // one waiting wake-up is enough
				}
			}
			// Lines read together came in one burst: a stream held back and then
			// released is not a live one.
			if a.at.Sub(last) >= w.ping/2 {
				prev, last = last, a.at
			}
		case <-tick.C:
		}
		now := time.Now()
		switch {
		case !last.IsZero() && !prev.IsZero() && now.Sub(last) <= w.silent && last.Sub(prev) <= w.silent:
			w.set(NotifyLive, "")
		case !last.IsZero() && now.Sub(last) > w.silent:
			w.set(NotifySilent, fmt.Sprintf("nothing received from the server for over %s, although it was asked for a keep-alive every %s", roughly(w.silent), roughly(w.ping)))
		case last.IsZero() && now.Sub(subscribed) > w.silent:
			w.set(NotifySilent, fmt.Sprintf("asked to subscribe, but the server has sent nothing back, not even the keep-alive asked for every %s", roughly(w.ping)))
		}
	}
}

// request is the signed ListenBucketNotification request for the bucket.
func (w *watch) request(ctx context.Context) (*http.Request, error) {
	s := w.s
	region := s.target.Region
	if region == "" {
		var err error
		if region, err = s.client.GetBucketLocation(ctx, s.bucket); err != nil {
			return nil, s.error("listen", s.bucket, err)
		}
	}
	q := url.Values{}
	q.Set("ping", fmt.Sprint(max(1, int(w.ping/time.Second))))
	q.Set("prefix", commonPrefix(w.prefixes))
	q.Set("suffix", "")
	q["events"] = []string{"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}
	scheme := "https"
	if !s.target.Secure {
		scheme = "http"
	}
	u := url.URL{Scheme: scheme, Host: s.endpoint, Path: "/" + s.bucket, RawQuery: strings.ReplaceAll(q.Encode(), "+", "%20")}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, newError("listen", s.bucket, ErrConfig, err, "cannot make the notification request")
	}
	req.Header.Set("X-Amz-Content-Sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") // of no body
	req.Header.Set("Accept-Encoding", "identity")
	return signer.SignV4(*req, s.access, s.secret, "", region), nil
}

// refused turns a non-200 answer to the subscription into an error, permanent when the
// server does not offer notifications at all.
func (w *watch) refused(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := minio.ErrorResponse{StatusCode: resp.StatusCode}
	_ = xml.Unmarshal(body, &e)
	if e.Code == "" {
		e.Code = resp.Status
	}
	switch {
	case resp.StatusCode == http.StatusNotImplemented, resp.StatusCode == http.StatusMethodNotAllowed,
		e.Code == "NotImplemented", e.Code == "MethodNotAllowed", e.Code == "UnsupportedNotification":
		return &permanent{newError("listen", w.s.bucket, ErrConfig, nil, "%s does not offer bucket notifications (the server said %s, HTTP %d)", w.s.endpoint, e.Code, resp.StatusCode)}
	}
	return w.s.error("listen", w.s.bucket, e)
}

// read reads the notification stream, one JSON object a line ({"Records":null} is a ping),
// until it ends or ctx is done.
func (w *watch) read(ctx context.Context, body io.Reader, arrivals chan<- arrival) error {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		var msg struct {
			Records []struct {
				S3 struct {
					Object struct {
						Key string `json:"key"`
					} `json:"object"`
				} `json:"s3"`
			}
		}
		if len(line) > 0 {
			if err := json.Unmarshal(line, &msg); err != nil {
				return fmt.Errorf("the server sent something other than notifications: %v", err)
			}
		}
		a := arrival{at: time.Now()}
		for _, rec := range msg.Records {
			key, err := url.QueryUnescape(rec.S3.Object.Key)
			if err != nil {
				key = rec.S3.Object.Key
			}
			a.matches = a.matches || w.matches(key)
		}
		select {
		case arrivals <- a:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return sc.Err()
}

func (w *watch) matches(key string) bool {
	for _, p := range w.prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return len(w.prefixes) == 0
}

// commonPrefix is the longest prefix of every one of prefixes: the server filters by one.
func commonPrefix(prefixes []string) string {
	if len(prefixes) == 0 {
		return ""
	}
	p := prefixes[0]
	for _, q := range prefixes[1:] {
		for !strings.HasPrefix(q, p) {
			p = p[:len(p)-1]
		}
	}
	return p
}
