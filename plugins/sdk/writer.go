package sdk

import (
	"fmt"
	"sort"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/tributary-health/tributary/formats"
)

// DefaultBatchRows is the number of rows a Writer puts in one batch when NewWriter is given
// zero. With the contract's short fields a full batch is a few hundred KiB, well under the
// protocol's message limit; the Writer also flushes early when long patient keys make a batch
// big (see maxBatchBytes).
const DefaultBatchRows = 8192

// maxBatchBytes bounds the estimated encoded size of one batch, so a batch of long patient keys
// still fits one message of the protocol (MaxChunkBytes, 1 MiB) with room for Arrow's framing.
const maxBatchBytes = 512 << 10

// fixedRowBytes estimates the encoded bytes of a row without its strings: three or four
// 4-byte dates, string offsets and validity bits.
const fixedRowBytes = 32

// maxReasonLen and maxReasons bound what Skip records, so a careless author who passes a value
// cannot fill memory or the summary with it.
const (
	maxReasonLen = 64
	maxReasons   = 64
	otherReason  = "other (too many distinct skip reasons)"
)

// Writer turns an extractor's rows into the contract's Arrow batches and hands each full batch
// to its emit function. It validates every row with formats, so a row that would break the
// contract is an error at the line that produced it, not a failed run at the agent.
//
// A Writer is not safe for concurrent use: an Extract that works in parallel must send its rows
// through one goroutine.
type Writer struct {
	emit      func(kind string, rec arrow.Record) error
	batchRows int
	regs      *formats.RegistrationBuilder
	events    *formats.EventBuilder
	regBytes  int
	evBytes   int
	evDiag    int // events with a diagnosis in the batch being built
	stats     Stats
}

// Stats counts what a Writer emitted and skipped.
type Stats struct {
	Rows    map[string]int64 // rows emitted, by row kind (formats.RowRegistrations, formats.RowEvents)
	Skipped map[string]int64 // source rows skipped, by reason
	Batches int64            // batches emitted
}

// TotalRows is the number of rows emitted of every kind.
func (s Stats) TotalRows() int64 { return sum(s.Rows) }

// TotalSkipped is the number of source rows skipped for any reason.
func (s Stats) TotalSkipped() int64 { return sum(s.Skipped) }

// SkippedFraction is skipped / (emitted + skipped), or 0 when there were no rows at all.
func (s Stats) SkippedFraction() float64 {
	skipped := s.TotalSkipped()
	total := s.TotalRows() + skipped
	if total == 0 {
		return 0
	}
	return float64(skipped) / float64(total)
}

// SkippedSummary lists the skip reasons with their counts, largest first, e.g.
// "unknown encounter class: 12, missing birth date: 3".
func (s Stats) SkippedSummary() string {
	reasons := make([]string, 0, len(s.Skipped))
	for r := range s.Skipped {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool {
		a, b := s.Skipped[reasons[i]], s.Skipped[reasons[j]]
		if a != b {
			return a > b
		}
		return reasons[i] < reasons[j]
	})
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		parts[i] = fmt.Sprintf("%s: %d", r, s.Skipped[r])
	}
	return strings.Join(parts, ", ")
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func (s Stats) clone() Stats {
	c := Stats{Rows: make(map[string]int64, len(s.Rows)), Skipped: make(map[string]int64, len(s.Skipped)), Batches: s.Batches}
	for k, v := range s.Rows {
		c.Rows[k] = v
	}
	for k, v := range s.Skipped {
		c.Skipped[k] = v
	}
	return c
}

// NewWriter returns a Writer that calls emit with each full batch (batchRows rows, or
// DefaultBatchRows when batchRows <= 0). emit must not keep rec after it returns unless it
// calls rec.Retain; an error from emit is returned by the Registration, Event or Flush call
// that caused it.
func NewWriter(emit func(kind string, rec arrow.Record) error, batchRows int) *Writer {
	if batchRows <= 0 {
		batchRows = DefaultBatchRows
	}
	return &Writer{
		emit:      emit,
		batchRows: batchRows,
		regs:      formats.NewRegistrationBuilder(nil),
		events:    formats.NewEventBuilder(nil),
		stats:     Stats{Rows: map[string]int64{}, Skipped: map[string]int64{}},
	}
}

// Registration adds one registration row. It returns the formats validation error (naming the
// field, never its value) when the row breaks the contract; the row is then not added, and the
// extractor decides whether to Skip it or fail.
func (w *Writer) Registration(r formats.Registration) error {
	if err := w.regs.Append(r); err != nil {
		return err
	}
	w.regBytes += fixedRowBytes + len(r.PatientKey) + len(r.Sex)
	if w.regs.Len() >= w.batchRows || w.regBytes >= maxBatchBytes {
		return w.flushRegistrations()
	}
	return nil
}

// Event adds one event row, like Registration.
func (w *Writer) Event(e formats.Event) error {
	if err := w.events.Append(e); err != nil {
		return err
	}
	w.evBytes += fixedRowBytes + len(e.PatientKey) + len(e.Kind) + len(e.Method) + len(e.DiagnosisCode) + len(e.DiagnosisSystem)
	if e.DiagnosisCode != "" {
		w.evDiag++
	}
	if w.events.Len() >= w.batchRows || w.evBytes >= maxBatchBytes {
		return w.flushEvents()
	}
	return nil
}

// Skip counts one source row the extractor could not use. reason is a short, fixed phrase such
// as "unknown encounter class" that is shown to the practice manager and written to logs: it
// must never contain a value from the row. Reasons are cut to 64 characters, and after 64
// distinct reasons the rest are counted together.
func (w *Writer) Skip(reason string) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		reason = "unspecified"
	}
	if len(reason) > maxReasonLen {
		reason = strings.ToValidUTF8(reason[:maxReasonLen], "")
	}
	if _, ok := w.stats.Skipped[reason]; !ok && len(w.stats.Skipped) >= maxReasons {
		reason = otherReason
	}
	w.stats.Skipped[reason]++
}

// Flush emits the rows not yet emitted. Serve and Run call it after Extract returns; an
// extractor only needs it to bound how long rows wait.
func (w *Writer) Flush() error {
	if err := w.flushRegistrations(); err != nil {
		return err
	}
	return w.flushEvents()
}

// Stats returns a copy of the counts so far.
func (w *Writer) Stats() Stats { return w.stats.clone() }

// release frees the builders; the Writer must not be used afterwards.
func (w *Writer) release() {
	w.regs.Release()
	w.events.Release()
}

func (w *Writer) flushRegistrations() error {
	if w.regs.Len() == 0 {
		return nil
	}
	w.regBytes = 0
	return w.send(formats.RowRegistrations, w.regs.NewRecord())
}

func (w *Writer) flushEvents() error {
	if w.events.Len() == 0 {
		return nil
	}
	w.evBytes = 0
	rec := w.events.NewRecord()
	if w.evDiag == 0 {
		// No event of the batch has a diagnosis: send it without the diagnosis columns
		// (formats.EventsSchemaV1), which every agent reads, including one that predates
		// diagnoses. The agent reads it as events without a diagnosis either way.
		v1 := array.NewRecord(formats.EventsSchemaV1, rec.Columns()[:formats.EventsSchemaV1.NumFields()], rec.NumRows())
		rec.Release()
		rec = v1
	}
	w.evDiag = 0
	return w.send(formats.RowEvents, rec)
}

func (w *Writer) send(kind string, rec arrow.Record) error {
	defer rec.Release()
	n := rec.NumRows()
	if err := w.emit(kind, rec); err != nil {
		return err
	}
	w.stats.Rows[kind] += n
	w.stats.Batches++
	return nil
}
