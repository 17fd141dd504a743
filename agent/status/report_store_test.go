package status

import (
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/agent/spool"
)

// TestReportStoreProblems: what status says and asks when the store is the problem, and that
// a clean one-off run needs nobody.
func TestReportStoreProblems(t *testing.T) {
	now := time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)
	oneOff := &State{Updated: now, LastRun: &Run{Finished: now.Add(-time.Minute), Result: ResultOK, Files: 1},
		Plugins: map[string]*Plugin{"good": {LastSuccess: now.Add(-time.Minute)}}, Upload: Upload{LastSuccess: now.Add(-time.Minute)}}
	failedUpload := func(service bool, msg string) *State {
		return &State{Service: service, Updated: now, LastRun: &Run{Finished: now.Add(-time.Minute), Result: ResultOK, Files: 1},
			Plugins: map[string]*Plugin{"good": {LastSuccess: now.Add(-time.Minute)}},
			Upload:  Upload{LastError: msg, LastErrorTime: now.Add(-time.Minute), NextRetry: now.Add(time.Minute)}}
	}
	waiting := spool.Stats{PendingRuns: 1, PendingBytes: 4 << 10, Oldest: now.Add(-time.Minute)}
	const (
		denied      = "upload practices/A81001/runs/r1/figures.arrow: store put practices/A81001/runs/r1/figures.arrow: access denied by the store: the server said AccessDenied (Access Denied.); check the credentials and the user's policy for bucket \"fed\""
		unreachable = "upload practices/A81001/runs/r1/figures.arrow: store put practices/A81001/runs/r1/figures.arrow: store unavailable: cannot reach the store at 127.0.0.1:1; check that it is running and reachable, then try again"
		plainHTTP   = "upload practices/A81001/runs/r1/figures.arrow: store put practices/A81001/runs/r1/figures.arrow: store is misconfigured: 127.0.0.1:9000 does not speak TLS; for a test server on this machine add insecure=true"
	)
	for _, c := range []struct {
		name    string
		in      Input
		todo    int
		has     []string
		hasNot  []string
		advises string // in the things to do
	}{
		{"clean one-off run", Input{State: oneOff, LastRelease: &spool.Release{Time: now.Add(-time.Minute), RunID: "r1"}},
			0, []string{"only one-off runs so far", "service install", "Last sent:", "Nothing to do"}, nil, ""},
		{"access denied, service running", Input{State: failedUpload(true, denied), Running: true, Spool: waiting},
			1, []string{"access denied", "Nothing has been sent whole yet"}, []string{"could not be reached", "Last sent"}, "TRIBUTARY_S3_ACCESS_KEY"},
		{"access denied, one-off", Input{State: failedUpload(false, denied), Spool: waiting},
			1, []string{"access denied"}, []string{"could not be reached"}, "credentials"},
		{"store down, service running", Input{State: failedUpload(true, unreachable), Running: true, Spool: waiting},
			0, []string{"could not be reached", "keeps trying by itself"}, nil, ""},
		{"store down, one-off", Input{State: failedUpload(false, unreachable), Spool: waiting},
			1, []string{"could not be reached"}, []string{"keeps trying"}, "reach the store"},
		{"plain HTTP server", Input{State: failedUpload(false, plainHTTP), Spool: waiting},
			1, []string{"store settings are wrong", "insecure=true"}, []string{"could not be reached"}, "store settings"},
		{"spool alarm", Input{State: failedUpload(true, unreachable), Running: true, Spool: spool.Stats{PendingRuns: 3, PendingBytes: 1 << 10, Oldest: now.Add(-100 * time.Hour)}, MaxAge: 72 * time.Hour},
			1, []string{"ALARM"}, nil, "store credentials"},
	} {
		c.in.Practice, c.in.Now, c.in.Plugins = "A81001", now, []string{"good"}
		var b strings.Builder
		todo := Report(&b, c.in)
		out := b.String()
		if len(todo) != c.todo {
			t.Errorf("%s: %d things to do, want %d:\n%s", c.name, len(todo), c.todo, out)
		}
		for _, w := range c.has {
			if !strings.Contains(out, w) {
				t.Errorf("%s: the report does not say %q:\n%s", c.name, w, out)
			}
		}
		for _, w := range c.hasNot {
			if strings.Contains(out, w) {
				t.Errorf("%s: the report says %q:\n%s", c.name, w, out)
			}
		}
		if c.advises != "" && !strings.Contains(strings.Join(todo, "\n"), c.advises) {
			t.Errorf("%s: what to do does not mention %q: %q", c.name, c.advises, todo)
		}
	}
}

// TestLastSentSkipsWaitingRuns: a run whose file went but whose manifest did not is still
// waiting, so it is not what was last sent.
func TestLastSentSkipsWaitingRuns(t *testing.T) {
	t0 := time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)
	rel := []spool.Release{
		{Time: t0, RunID: "r1", Key: "practices/A/runs/r1/figures.arrow"},
		{Time: t0, RunID: "r1", Key: "practices/A/runs/r1/manifest.json"},
		{Time: t0.Add(time.Hour), RunID: "r2", Key: "practices/A/runs/r2/figures.arrow"},
	}
	if got := LastSent(rel, []spool.Run{{ID: "r2"}}); got == nil || got.RunID != "r1" {
		t.Errorf("last sent with r2 waiting = %+v, want r1", got)
	}
	if got := LastSent(rel, nil); got == nil || got.RunID != "r2" {
		t.Errorf("last sent with nothing waiting = %+v, want r2", got)
	}
	if got := LastSent(rel[2:], []spool.Run{{ID: "r2"}}); got != nil {
		t.Errorf("last sent with only r2, waiting = %+v, want none", got)
	}
}
