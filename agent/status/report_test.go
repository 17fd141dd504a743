package status

import (
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/agent/spool"
)

func TestReport(t *testing.T) {
	now := time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)
	ok := &State{Service: true, Updated: now, NextRun: now.Add(17 * time.Hour),
		LastRun: &Run{Finished: now.Add(-7 * time.Hour), Result: ResultOK, Files: 6},
		Plugins: map[string]*Plugin{"synthea": {LastSuccess: now.Add(-7 * time.Hour)}},
		Upload:  Upload{LastSuccess: now.Add(-7 * time.Hour)}}
	failing := &State{Service: true, Updated: now,
		LastRun: &Run{Finished: now.Add(-time.Hour), Result: ResultPartial, Files: 6},
		Plugins: map[string]*Plugin{
			"synthea": {LastSuccess: now.Add(-time.Hour)},
			"omop":    {LastSuccess: now.Add(-49 * time.Hour), LastFailure: now.Add(-time.Hour), FailureKind: "crash", FailureReason: "plugin exited unexpectedly", FailuresInARow: 2},
		},
		Upload: Upload{LastError: "store unavailable: cannot reach the store", LastErrorTime: now.Add(-time.Minute), LastSuccess: now.Add(-50 * time.Hour), NextRetry: now.Add(time.Minute)}}
	tests := []struct {
		name     string
		in       Input
		todo     int
		contains []string
	}{
		{"all well", Input{State: ok, Running: true, Plugins: []string{"synthea"}, LastRelease: &spool.Release{Time: now.Add(-7 * time.Hour), RunID: "r1"}},
			0, []string{"Service: running; next run", "every plugin worked", "synthea: OK", "nothing waiting", "Last sent:", "Nothing to do"}},
		{"never installed", Input{Plugins: []string{"synthea"}},
			1, []string{"never run here", "service install", "synthea: not run yet", "Last run: none yet"}},
		{"stopped", Input{State: ok, Running: false, Plugins: []string{"synthea"}},
			1, []string{"NOT RUNNING", "service start"}},
		{"plugin failing, store down", Input{State: failing, Running: true, Plugins: []string{"synthea", "omop"},
			Spool: spool.Stats{PendingRuns: 2, PendingBytes: 3 << 20, Oldest: now.Add(-50 * time.Hour)}, MaxBytes: 1 << 30, MaxAge: 72 * time.Hour},
			1, []string{"omop: FAILING, 2 run(s) in a row (crash)", "last worked", "2 run(s), 3.0 MB, waiting", "could not be reached", "keeps trying by itself", "Plugin omop fails (crash)"}},
		{"spool alarm", Input{State: failing, Running: true, Plugins: []string{"synthea"},
			Spool: spool.Stats{PendingRuns: 9, PendingBytes: 2 << 20, Oldest: now.Add(-100 * time.Hour)}, MaxBytes: 1 << 20, MaxAge: 72 * time.Hour},
			1, []string{"ALARM:", "over its limit of 1.0 MB (spool_max_mb)", "over the limit of 72h0m0s (spool_max_age)", "Nothing has been deleted"}},
	}
	for _, tt := range tests {
		tt.in.Practice, tt.in.Now = "A81001", now
		var b strings.Builder
		todo := Report(&b, tt.in)
		out := b.String()
		if len(todo) != tt.todo {
			t.Errorf("%s: %d things to do, want %d:\n%s", tt.name, len(todo), tt.todo, out)
		}
		for _, want := range tt.contains {
			if !strings.Contains(out, want) {
				t.Errorf("%s: report lacks %q:\n%s", tt.name, want, out)
			}
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	path := Path(t.TempDir())
	if s, err := Read(path); s != nil || err != nil {
		t.Fatalf("a missing state file is (nil, nil), got %v %v", s, err)
	}
	want := &State{PID: 42, Service: true, Listen: "127.0.0.1:9464", Plugins: map[string]*Plugin{"x": {FailuresInARow: 3}}}
	if err := Write(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil || got.PID != 42 || got.Plugins["x"].FailuresInARow != 3 || got.Listen != want.Listen {
		t.Fatalf("read back %+v, %v", got, err)
	}
}

// TestReportMeasures: a refused federation measures file and the measures a practice cannot
// supply are in the status report, the first with something to do.
func TestReportMeasures(t *testing.T) {
	now := time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)
	st := &State{Service: true, Updated: now,
		LastRun: &Run{Finished: now.Add(-time.Hour), Result: ResultOK, Files: 1,
			MeasuresError: "the federation's measures file federation/measures.json was refused: the signature does not match",
			Absent:        []string{"readmissions_emergency_30d: no source sends admissions' discharge dates"}}}
	var b strings.Builder
	todo := Report(&b, Input{State: st, Running: true, Now: now})
	out := b.String()
	for _, want := range []string{"Federation measures REFUSED: the federation's measures file", "Measures absent from this practice's figures", "readmissions_emergency_30d: no source sends admissions' discharge dates"} {
		if !strings.Contains(out, want) {
			t.Errorf("the report does not say %q:\n%s", want, out)
		}
	}
	if !strings.Contains(strings.Join(todo, "\n"), "federation's measures file") {
		t.Errorf("nothing to do about the refused file: %v", todo)
	}
}
