package main

import (
	"context"
	"errors"
	"maps"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/apache/arrow/go/v17/arrow"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/host"
	"github.com/tributary-health/tributary/plugins/sdk"
	"github.com/tributary-health/tributary/plugins/sdk/sdktest"
)

// counts tallies what an extraction through the host emitted: registrations, and events by
// kind/method as sdktest.Recording.EventCounts does.
type counts struct {
	registrations int
	events        map[string]int
}

func (c *counts) emit(kind string, rec arrow.Record) error {
	switch kind {
	case formats.RowRegistrations:
		return formats.DecodeRegistrations(rec, func(formats.Registration) error { c.registrations++; return nil })
	case formats.RowEvents:
		return formats.DecodeEvents(rec, func(e formats.Event) error {
			k := e.Kind
			if e.Kind == formats.KindAdmission {
				k += "/" + e.Method
			}
			c.events[k]++
			return nil
		})
	}
	return errors.New("unexpected row kind " + kind)
}

var (
	jan, feb = formats.MonthFor(2024, 1), formats.MonthFor(2024, 2)
	// The sample holds one registration with an unknown sex code and one event with an
	// unknown setting; the rest are good. One emergency stay began in December and ends in
	// January: it is sent, since its bed days count in January. One stay spans December to
	// March: it counts in neither month and is not sent. One crosses from January into
	// February, for the conformance check's test of stays.
	wantEvents = map[string]int{
		"consultation":          3,
		"outpatient_attendance": 1,
		"ae_attendance":         1,
		"admission/emergency":   3,
		"admission/elective":    1,
		"admission/unknown":     1,
	}
)

func config(extra ...string) map[string]string {
	c := map[string]string{"dir": "testdata"}
	for i := 0; i+1 < len(extra); i += 2 {
		c[extra[i]] = extra[i+1]
	}
	return c
}

func check(t *testing.T, registrations int, events map[string]int) {
	t.Helper()
	if registrations != 4 {
		t.Errorf("registrations = %d, want 4", registrations)
	}
	if !maps.Equal(events, wantEvents) {
		t.Errorf("events %v, want %v", events, wantEvents)
	}
}

func TestExtract(t *testing.T) {
	rec := sdktest.Extract(t, Extractor{}, jan, feb, config("max_skipped_fraction", "0.5"))
	check(t, len(rec.Registrations), rec.EventCounts())
	if rec.Stats.Skipped["unknown event setting"] != 1 || rec.Stats.TotalSkipped() != 2 {
		t.Errorf("skipped %v", rec.Stats.Skipped)
	}
	if u := rec.Uncounted(); len(u) != 0 {
		t.Errorf("%d events sent that the agent would not count", len(u))
	}
	for _, e := range rec.EventsOf(formats.KindAdmission) {
		if e.Start.Month() < jan && e.End.Month() != jan {
			t.Errorf("a stay from %s to %s was sent", e.Start, e.End)
		}
	}
	// Diagnoses in canonical form (I21.9 is I219, HES's I10X is I10); free text is left out
	// and counted in the log.
	if got, want := rec.Diagnoses(), map[string]int{"admission/icd10": 3, "consultation/icd10": 1}; !maps.Equal(got, want) {
		t.Errorf("diagnoses %v, want %v", got, want)
	}
	codes := map[string]bool{}
	for _, e := range rec.Events {
		codes[e.DiagnosisCode] = true
	}
	for _, c := range []string{"I219", "I10", "K409", "J459"} {
		if !codes[c] {
			t.Errorf("no event with the diagnosis %s", c)
		}
	}
	if !strings.Contains(rec.Log, "diagnoses that are not ICD-10 codes, sent as no diagnosis: count=1") {
		t.Errorf("log %q does not count the diagnosis that is not a code", rec.Log)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name   string
		config map[string]string
		kind   error
		saying string
	}{
		{"skipped rows over the default budget", config(), sdk.ErrBudget, "unknown event setting: 1"},
		{"missing dir", map[string]string{}, sdk.ErrConfig, "the required key dir is not set"},
		{"misspelt dir", map[string]string{"dri": "testdata"}, sdk.ErrConfig, "unknown key dri (is it dir, misspelt?"},
		{"wrong dir", map[string]string{"dir": "nowhere"}, sdk.ErrConfig, "set dir to the folder"},
		{"unknown key", config("colour", "blue"), sdk.ErrConfig, "unknown key colour; known keys are dir, max_skipped_fraction"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sdktest.Run(context.Background(), Extractor{}, sdk.Request{From: jan, To: feb, Config: tt.config})
			if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.saying) {
				t.Fatalf("err = %v, want %v saying %q", err, tt.kind, tt.saying)
			}
		})
	}
}

// TestThroughHost builds the plugin and runs it as the agent would.
func TestThroughHost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and launches the plugin binary")
	}
	bin := filepath.Join(t.TempDir(), "template")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sum, err := host.FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	p, err := host.Launch(context.Background(), host.Options{Path: bin, SHA256: sum})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]string{"dir": dir, "max_skipped_fraction": "0.5"}
	if err := p.ValidateConfig(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	c := counts{events: map[string]int{}}
	summary, err := p.Extract(context.Background(), sdk.Request{From: jan, To: feb, Config: cfg}, c.emit)
	if err != nil {
		t.Fatal(err)
	}
	check(t, c.registrations, c.events)
	if summary.Skipped["unknown event setting"] != 1 {
		t.Errorf("summary %+v", summary)
	}
	p.Close()
	if !p.Exited() {
		t.Fatal("plugin still running after Close")
	}
}

// TestSampleConfig keeps sample.toml in step with Describe.
func TestSampleConfig(t *testing.T) {
	var cfg map[string]string
	if _, err := toml.Decode(SampleConfig, &cfg); err != nil {
		t.Fatalf("sample.toml: %v", err)
	}
	known := map[string]bool{}
	for _, k := range append((Extractor{}).Describe().Config, sdk.GenericConfig...) {
		known[k.Name] = true
	}
	for k := range cfg {
		if !known[k] {
			t.Errorf("sample.toml sets %s, which Describe does not list", k)
		}
	}
	for _, k := range (Extractor{}).Describe().Config {
		if _, ok := cfg[k.Name]; !ok && k.Required {
			t.Errorf("sample.toml lacks the required key %s", k.Name)
		}
	}
}
