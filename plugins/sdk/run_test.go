package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/tributary-health/tributary/formats"
	pluginv1 "github.com/tributary-health/tributary/plugins/proto/tributary/plugin/v1"
)

// fakeExtractor emits n events and skips s rows, or panics when told to.
type fakeExtractor struct {
	events  int
	skips   int
	panic   bool
	fail    error
	require bool
}

func (f fakeExtractor) Describe() Description {
	d := Description{Name: "fake", Version: "0.1.0", RowKinds: []string{formats.RowEvents}, EventKinds: []string{formats.KindConsultation}}
	if f.require {
		d.Config = []ConfigKey{{Name: "dir", Help: "where the data is", Required: true}}
	}
	return d
}

func (f fakeExtractor) Extract(ctx context.Context, req Request, w *Writer) error {
	if f.panic {
		var xs []int
		_ = xs[len(req.Config)+3]
	}
	if f.fail != nil {
		return f.fail
	}
	if _, ok := req.Config[ConfigMaxSkippedFraction]; ok {
		return errors.New("generic key leaked to the extractor")
	}
	start := formats.DateOf(req.From.Start())
	for i := 0; i < f.events; i++ {
		if err := w.Event(formats.Event{PatientKey: "p", Kind: formats.KindConsultation, Start: start, End: formats.NoEnd}); err != nil {
			return err
		}
	}
	for i := 0; i < f.skips; i++ {
		w.Skip("unknown encounter class")
	}
	return nil
}

func TestRun(t *testing.T) {
	m := formats.MonthFor(2024, 1)
	tests := []struct {
		name    string
		ex      fakeExtractor
		config  map[string]string
		to      formats.Month
		rows    int64
		batches int
		wantErr error
		errHas  string
	}{
		{name: "ok", ex: fakeExtractor{events: 20000}, rows: 20000, batches: 3},
		{name: "within budget", ex: fakeExtractor{events: 1000, skips: 10}, rows: 1000, batches: 1},
		{name: "over budget", ex: fakeExtractor{events: 100, skips: 10}, wantErr: ErrBudget, errHas: "unknown encounter class: 10"},
		{name: "budget raised", ex: fakeExtractor{events: 100, skips: 10}, config: map[string]string{"max_skipped_fraction": "0.5"}, rows: 100, batches: 1},
		{name: "budget malformed", ex: fakeExtractor{}, config: map[string]string{"max_skipped_fraction": "lots"}, wantErr: ErrConfig},
		{name: "panic", ex: fakeExtractor{panic: true}, wantErr: ErrPanic, errHas: "run_test.go"},
		{name: "extract error", ex: fakeExtractor{fail: errors.New("cannot open export")}, wantErr: ErrExtract, errHas: "cannot open export"},
		// A timeout of the extractor's own, while the agent still waits, is its failure: the
		// agent must not take it for its own timeout.
		{name: "own deadline", ex: fakeExtractor{fail: fmt.Errorf("query: %w", context.DeadlineExceeded)}, wantErr: ErrExtract, errHas: "query"},
		{name: "required key", ex: fakeExtractor{require: true}, wantErr: ErrConfig, errHas: "dir"},
		{name: "backwards range", ex: fakeExtractor{}, to: m - 1, wantErr: ErrRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to := tt.to
			if to == 0 {
				to = m
			}
			var rows int64
			batches := 0
			emit := func(kind string, rec arrow.Record) error {
				if kind != formats.RowEvents {
					t.Errorf("kind %q", kind)
				}
				if err := formats.CheckSchema(kind, rec.Schema()); err != nil {
					t.Error(err)
				}
				rows += rec.NumRows()
				batches++
				return nil
			}
			stats, err := Run(context.Background(), tt.ex, Request{From: m, To: to, Config: tt.config}, emit)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rows != tt.rows || stats.Rows[formats.RowEvents] != tt.rows || batches != tt.batches {
				t.Fatalf("rows %d, stats %v, batches %d; want %d rows in %d batches", rows, stats.Rows, batches, tt.rows, tt.batches)
			}
		})
	}
}

func TestWriterRejectsBadRowsAndBoundsReasons(t *testing.T) {
	w := NewWriter(func(string, arrow.Record) error { return nil }, 10)
	defer w.release()
	err := w.Registration(formats.Registration{PatientKey: "secret-key", Sex: "x", From: 1, To: formats.NoEnd})
	if !errors.Is(err, formats.ErrValue) || strings.Contains(err.Error(), "secret") {
		t.Fatalf("err = %v", err)
	}
	for i := 0; i < 100; i++ {
		w.Skip(fmt.Sprintf("reason %03d ", i) + strings.Repeat("x", 100))
	}
	s := w.Stats()
	if len(s.Skipped) > maxReasons+1 || s.TotalSkipped() != 100 || s.Skipped[otherReason] == 0 {
		t.Fatalf("skipped = %d reasons, %d total", len(s.Skipped), s.TotalSkipped())
	}
	for r := range s.Skipped {
		if len(r) > maxReasonLen && r != otherReason {
			t.Fatalf("reason of %d bytes kept", len(r))
		}
	}
}

func TestWriterFlushesLongKeysEarly(t *testing.T) {
	var batches []int64
	w := NewWriter(func(_ string, rec arrow.Record) error {
		b, err := formats.EncodeBatch(rec)
		if err != nil {
			return err
		}
		if len(b) > MaxChunkBytes {
			t.Errorf("batch of %d bytes", len(b))
		}
		batches = append(batches, rec.NumRows())
		return nil
	}, 0)
	defer w.release()
	key := strings.Repeat("k", 1000)
	for i := 0; i < 5000; i++ {
		if err := w.Event(formats.Event{PatientKey: key, Kind: formats.KindAE, Start: 1, End: formats.NoEnd}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(batches) < 5 {
		t.Fatalf("batches %v: long keys should flush early", batches)
	}
}

func TestSendChunksSplitsLargeBatches(t *testing.T) {
	b := formats.NewEventBuilder(nil)
	defer b.Release()
	key := strings.Repeat("k", 3000)
	for i := 0; i < 1000; i++ {
		if err := b.Append(formats.Event{PatientKey: key, Kind: formats.KindAE, Start: formats.Date(i), End: formats.NoEnd}); err != nil {
			t.Fatal(err)
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	var rows int64
	chunks := 0
	err := sendChunks(formats.RowEvents, rec, MaxChunkBytes, func(c *pluginv1.Chunk) error {
		chunks++
		if len(c.ArrowIpc) > MaxChunkBytes {
			t.Errorf("chunk of %d bytes", len(c.ArrowIpc))
		}
		got, err := formats.DecodeBatch(c.ArrowIpc, 0)
		if err != nil {
			return err
		}
		defer got.Release()
		return formats.DecodeEvents(got, func(e formats.Event) error {
			if e.Start != formats.Date(rows) {
				t.Fatalf("row %d has start %d: order lost", rows, e.Start)
			}
			rows++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if rows != 1000 || chunks < 3 {
		t.Fatalf("rows %d in %d chunks", rows, chunks)
	}

	one := rec.NewSlice(0, 1)
	defer one.Release()
	if err := sendChunks(formats.RowEvents, one, 100, func(*pluginv1.Chunk) error { return nil }); err == nil {
		t.Fatal("a single row over the limit was sent")
	}
}
