// Package sdktest runs an extractor in the test process, exactly as the agent would run its
// plugin (configuration checks, panic recovery, the skipped-rows budget: sdk.Run), checks what
// it sends as the agent's host does, and hands back the rows as Go values, so a plugin
// author's test needs no Arrow decoding:
//
//	func TestExtract(t *testing.T) {
//		rec := sdktest.Extract(t, Extractor{}, formats.MonthFor(2024, 1), formats.MonthFor(2024, 2),
//			map[string]string{"dir": "testdata"})
//		if got := rec.EventCounts()["admission/emergency"]; got != 2 {
//			t.Errorf("emergency admissions = %d, want 2", got)
//		}
//	}
package sdktest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/hashicorp/go-hclog"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// Recording is what one extraction sent.
type Recording struct {
	From, To      formats.Month
	Registrations []formats.Registration // in the order sent
	Events        []formats.Event        // in the order sent
	Batches       int                    // batches sent
	Stats         sdk.Stats              // rows sent and source rows skipped, by reason, as the SDK counted them
	Supplies      sdk.Supplies           // what the extractor said it supplies with the configuration
	Log           string                 // what the extractor logged through req.Log, one line per entry
}

// Run checks req.Config and runs ex over req.From..req.To as sdk.Run does, recording every row
// it sends. Every batch is checked as the agent's host checks a plugin's: its schema and
// values against formats, its row kind and event kinds against what the extractor supplies
// with this configuration. The error is sdk.Run's (errors.Is with sdk.ErrConfig, sdk.ErrBudget,
// ...) or the first batch that broke the contract; the recording holds what arrived before it.
// req.Log, when nil, is set to a logger whose lines end up in Recording.Log.
func Run(ctx context.Context, ex sdk.Extractor, req sdk.Request) (*Recording, error) {
	rec := &Recording{From: req.From, To: req.To}
	var log logBuffer
	if req.Log == nil {
		req.Log = hclog.New(&hclog.LoggerOptions{Output: &log, Level: hclog.Trace, DisableTime: true})
	}
	defer func() { rec.Log = log.String() }()
	supplies, err := sdk.ValidateConfig(ex, req.Config)
	if err != nil {
		return rec, err
	}
	rec.Supplies = supplies
	stats, err := sdk.Run(ctx, ex, req, func(kind string, batch arrow.Record) error {
		rec.Batches++
		return rec.add(kind, batch)
	})
	rec.Stats = stats
	return rec, err
}

// Extract is Run for a test: it fails t at once on any error.
func Extract(t testing.TB, ex sdk.Extractor, from, to formats.Month, config map[string]string) *Recording {
	t.Helper()
	rec, err := Run(context.Background(), ex, sdk.Request{From: from, To: to, Config: config})
	if err != nil {
		t.Fatalf("extract %s to %s: %v", from, to, err)
	}
	return rec
}

// add checks one batch as the host does and keeps its rows. The strings of a decoded row point
// into the batch, which is released after emit returns: they are copied.
func (r *Recording) add(kind string, batch arrow.Record) error {
	if !slices.Contains(r.Supplies.RowKinds, kind) {
		return fmt.Errorf("batch %d holds %s rows, which the extractor does not supply with this configuration (it supplies %s)", r.Batches, kind, strings.Join(r.Supplies.RowKinds, ", "))
	}
	if err := formats.CheckSchema(kind, batch.Schema()); err != nil {
		return fmt.Errorf("batch %d: %w", r.Batches, err)
	}
	switch kind {
	case formats.RowRegistrations:
		return formats.DecodeRegistrations(batch, func(g formats.Registration) error {
			g.PatientKey, g.Sex = strings.Clone(g.PatientKey), strings.Clone(g.Sex)
			r.Registrations = append(r.Registrations, g)
			return nil
		})
	case formats.RowEvents:
		return formats.DecodeEvents(batch, func(e formats.Event) error {
			if !slices.Contains(r.Supplies.EventKinds, e.Kind) {
				return fmt.Errorf("batch %d: an event of kind %s, which the extractor does not supply with this configuration (it supplies %s)", r.Batches, e.Kind, strings.Join(r.Supplies.EventKinds, ", "))
			}
			e.PatientKey, e.Kind, e.Method = strings.Clone(e.PatientKey), strings.Clone(e.Kind), strings.Clone(e.Method)
			e.DiagnosisCode, e.DiagnosisSystem = strings.Clone(e.DiagnosisCode), strings.Clone(e.DiagnosisSystem)
			r.Events = append(r.Events, e)
			return nil
		})
	}
	return fmt.Errorf("batch %d has row kind %q, which the contract does not have", r.Batches, kind)
}

// EventCounts tallies the events by kind and, for admissions, method: "consultation",
// "admission/emergency", "admission/unknown".
func (r *Recording) EventCounts() map[string]int {
	out := map[string]int{}
	for _, e := range r.Events {
		k := e.Kind
		if e.Kind == formats.KindAdmission {
			k += "/" + e.Method
		}
		out[k]++
	}
	return out
}

// Diagnoses tallies the events' primary diagnoses by kind and code system, for the events that
// have one: "admission/icd10": 12, "consultation/snomedct": 40.
func (r *Recording) Diagnoses() map[string]int {
	out := map[string]int{}
	for _, e := range r.Events {
		if e.DiagnosisSystem != "" {
			out[e.Kind+"/"+e.DiagnosisSystem]++
		}
	}
	return out
}

// EventsOf returns the events of one kind, in the order sent.
func (r *Recording) EventsOf(kind string) []formats.Event {
	var out []formats.Event
	for _, e := range r.Events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// Uncounted returns the events the agent will not count for the recorded months
// (formats.EventInMonths): those that neither start in them nor are admissions discharged in
// them. The plugin guide asks extractors not to send them; a test can require that there are
// none.
func (r *Recording) Uncounted() []formats.Event {
	var out []formats.Event
	for _, e := range r.Events {
		if !formats.EventInMonths(e, r.From, r.To) {
			out = append(out, e)
		}
	}
	return out
}

// logBuffer is a bytes.Buffer safe for an extractor that logs from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
