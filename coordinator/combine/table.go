package combine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	"github.com/tributary-health/tributary/coordinator/figures"
	"github.com/tributary-health/tributary/formats"
)

// PracticeRow is one row of a practice's table: one value the practice published, from the
// run combined for its period.
type PracticeRow struct {
	Practice string
	RunID    string
	Period   formats.Period
	Measure  string
	AgeBand  string // a band or formats.All
	Sex      string // a sex or formats.All
	formats.Protected
}

// Table kinds, recorded as the tributary.kind schema metadata of each output.
const (
	KindFederation = "federation"
	KindPractices  = "practices"
)

// Schema metadata of the outputs beside tributary.kind and tributary.policy.
const (
	// MetaInputsSHA256 is the federation table's Report.InputsSHA256: a digest of the practice
	// files and manifests it was made from.
	MetaInputsSHA256 = "tributary.inputs_sha256"
	MetaSuppressMax  = "tributary.suppress_max"
)

var (
	str      = arrow.BinaryTypes.String
	i64      = arrow.PrimitiveTypes.Int64
	f64      = arrow.PrimitiveTypes.Float64
	optional = func(name string, t arrow.DataType) arrow.Field {
		return arrow.Field{Name: name, Type: t, Nullable: true}
	}
	required = func(name string, t arrow.DataType) arrow.Field { return arrow.Field{Name: name, Type: t} }

	practiceFields = []arrow.Field{
		required("practice", str), required("run_id", str), required("period", str), required("measure", str),
		required("age_band", str), required("sex", str), optional("count", i64), required("status", str),
		optional("lower", i64), optional("upper", i64),
	}
	// federationFields are figures.Figure's columns (see its JSON names), with the period's
	// kind for engines that filter on it.
	federationFields = []arrow.Field{
		required("period", str), required("period_kind", str), required("measure", str),
		required("age_band", str), required("sex", str), required("status", str),
		optional("count", i64), required("lower", i64), required("upper", i64), required("published_sum", i64),
		required("method", str), optional("list_size", i64), optional("list_lower", f64), optional("list_upper", f64),
		optional("rate_per_1000", f64), optional("rate_lower", f64), optional("rate_upper", f64),
		optional("dsr_per_1000", f64), optional("dsr_ci_lower", f64), optional("dsr_ci_upper", f64),
		optional("dsr_at_lower", f64), optional("dsr_at_upper", f64), required("practices", i64), required("note", str),
	}
)

// Schema returns the Arrow schema of a combined table of kind (KindFederation or
// KindPractices) with the given metadata.
func Schema(kind string, md map[string]string) *arrow.Schema {
	fields := federationFields
	if kind == KindPractices {
		fields = practiceFields
	}
	m := arrow.MetadataFrom(md)
	return arrow.NewSchema(fields, &m)
}

// batchRows is how many rows go into one record batch and one Parquet row group.
const batchRows = 1 << 17

// tableWriter writes rows to an Arrow IPC file and optionally a Parquet file (zstd) at once,
// in batches, so a table larger than memory as Go values never has to be held. The federation
// table's IPC buffers are zstd-compressed; the practice tables', of which a combine writes
// one per practice, use LZ4, which costs a fifth less CPU to write and read for a fifth
// more bytes.
type tableWriter struct {
	kind     string
	schema   *arrow.Schema
	b        *array.RecordBuilder
	arrowBuf bytes.Buffer
	pqBuf    bytes.Buffer
	ipcw     *ipc.FileWriter
	pqw      *pqarrow.FileWriter
	rows     int64
	sums     [3]int64 // count, lower, upper: checked when the Parquet file is read back
}

// newTableWriter starts a table; withParquet adds the Parquet copy.
func newTableWriter(kind string, md map[string]string, withParquet bool) (*tableWriter, error) {
	t := &tableWriter{kind: kind, schema: Schema(kind, md)}
	t.b = array.NewRecordBuilder(memory.NewGoAllocator(), t.schema)
	var err error
	codec := ipc.WithZstd()
	if kind == KindPractices {
		codec = ipc.WithLZ4()
	}
	t.ipcw, err = ipc.NewFileWriter(&seekBuffer{Buffer: &t.arrowBuf}, ipc.WithSchema(t.schema), codec)
	if err != nil {
		return nil, err
	}
	if !withParquet {
		return t, nil
	}
	props := parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithDictionaryDefault(true),
		parquet.WithMaxRowGroupLength(batchRows),
		parquet.WithCreatedBy("tributary-coordinator"),
	)
	t.pqw, err = pqarrow.NewFileWriter(t.schema, &t.pqBuf, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return nil, err
	}
	return t, nil
}

func (t *tableWriter) appendPractice(r *PracticeRow) error {
	f := t.b.Fields()
	f[0].(*array.StringBuilder).Append(r.Practice)
	f[1].(*array.StringBuilder).Append(r.RunID)
	f[2].(*array.StringBuilder).Append(r.Period.String())
	f[3].(*array.StringBuilder).Append(r.Measure)
	f[4].(*array.StringBuilder).Append(r.AgeBand)
	f[5].(*array.StringBuilder).Append(r.Sex)
	switch r.Status {
	case formats.StatusRounded:
		f[6].(*array.Int64Builder).Append(r.Count)
		t.sums[0] += r.Count
	default:
		f[6].(*array.Int64Builder).AppendNull()
	}
	f[7].(*array.StringBuilder).Append(r.Status)
	if r.Status == formats.StatusWithheld {
		f[8].(*array.Int64Builder).AppendNull()
		f[9].(*array.Int64Builder).AppendNull()
	} else {
		f[8].(*array.Int64Builder).Append(r.Lower)
		f[9].(*array.Int64Builder).Append(r.Upper)
	}
	t.sums[1] += r.Lower
	t.sums[2] += r.Upper
	return t.appended()
}

func (t *tableWriter) appendFederation(r *figures.Figure) error {
	f := t.b.Fields()
	optI := func(i int, v *int64) {
		if v == nil {
			f[i].(*array.Int64Builder).AppendNull()
		} else {
			f[i].(*array.Int64Builder).Append(*v)
		}
	}
	optF := func(i int, v *float64) {
		if v == nil {
			f[i].(*array.Float64Builder).AppendNull()
		} else {
			f[i].(*array.Float64Builder).Append(*v)
		}
	}
	band, sex := r.AgeBand, r.Sex
	if band == "" {
		band = formats.All
	}
	if sex == "" {
		sex = formats.All
	}
	p, err := formats.ParsePeriod(r.Period)
	if err != nil {
		return fmt.Errorf("federation figure of period %q: %w", r.Period, err)
	}
	f[0].(*array.StringBuilder).Append(r.Period)
	f[1].(*array.StringBuilder).Append(periodKinds[p.Kind])
	f[2].(*array.StringBuilder).Append(r.Measure)
	f[3].(*array.StringBuilder).Append(band)
	f[4].(*array.StringBuilder).Append(sex)
	f[5].(*array.StringBuilder).Append(r.Status)
	optI(6, r.Count)
	f[7].(*array.Int64Builder).Append(r.Lower)
	f[8].(*array.Int64Builder).Append(r.Upper)
	f[9].(*array.Int64Builder).Append(r.PublishedSum)
	f[10].(*array.StringBuilder).Append(r.Method)
	optI(11, r.ListSize)
	optF(12, r.ListLower)
	optF(13, r.ListUpper)
	optF(14, r.Rate)
	optF(15, r.RateLower)
	optF(16, r.RateUpper)
	optF(17, r.DSR)
	optF(18, r.DSRCILower)
	optF(19, r.DSRCIUpper)
	optF(20, r.DSRAtLower)
	optF(21, r.DSRAtUpper)
	f[22].(*array.Int64Builder).Append(r.Practices)
	f[23].(*array.StringBuilder).Append(r.Note)
	if r.Count != nil {
		t.sums[0] += *r.Count
	}
	t.sums[1] += r.Lower
	t.sums[2] += r.Upper
	return t.appended()
}

// periodKinds names formats.PeriodKind values in the federation table.
var periodKinds = map[formats.PeriodKind]string{formats.KindMonth: "month", formats.KindQuarter: "quarter", formats.KindYear: "year"}

func (t *tableWriter) appended() error {
	t.rows++
	if t.b.Field(0).Len() >= batchRows {
		return t.flush()
	}
	return nil
}

func (t *tableWriter) flush() error {
	if t.b.Field(0).Len() == 0 {
		return nil
	}
	rec := t.b.NewRecord()
	defer rec.Release()
	if err := t.ipcw.Write(rec); err != nil {
		return fmt.Errorf("write %s table (arrow): %w", t.kind, err)
	}
	if t.pqw == nil {
		return nil
	}
	if err := t.pqw.Write(rec); err != nil {
		return fmt.Errorf("write %s table (parquet): %w", t.kind, err)
	}
	return nil
}

// finish closes the files and reads the Parquet one back, checking its rows and totals, so a
// combine never publishes a Parquet file that does not hold what it meant to write. pqData
// is nil for a table without a Parquet copy.
func (t *tableWriter) finish(ctx context.Context) (arrowData, pqData []byte, err error) {
	defer t.b.Release()
	if err := t.flush(); err != nil {
		return nil, nil, err
	}
	if err := t.ipcw.Close(); err != nil {
		return nil, nil, fmt.Errorf("close %s table (arrow): %w", t.kind, err)
	}
	if t.pqw == nil {
		return t.arrowBuf.Bytes(), nil, nil
	}
	if err := t.pqw.Close(); err != nil {
		return nil, nil, fmt.Errorf("close %s table (parquet): %w", t.kind, err)
	}
	rows, sums, err := parquetTotals(ctx, t.pqBuf.Bytes())
	if err != nil {
		return nil, nil, fmt.Errorf("read back the %s Parquet file: %w", t.kind, err)
	}
	if rows != t.rows || sums != t.sums {
		return nil, nil, fmt.Errorf("read back the %s Parquet file: it holds %d rows with totals %v, %d rows with totals %v were written", t.kind, rows, sums, t.rows, t.sums)
	}
	return t.arrowBuf.Bytes(), t.pqBuf.Bytes(), nil
}

// parquetTotals reads a combined table's Parquet file batch by batch and returns its row
// count and the sums of count (published values only), lower and upper.
func parquetTotals(ctx context.Context, data []byte) (int64, [3]int64, error) {
	var sums [3]int64
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		return 0, sums, err
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: batchRows}, memory.NewGoAllocator())
	if err != nil {
		return 0, sums, err
	}
	schema, err := fr.Schema()
	if err != nil {
		return 0, sums, err
	}
	var cols []int
	for _, name := range []string{"count", "lower", "upper"} {
		idx := schema.FieldIndices(name)
		if len(idx) != 1 {
			return 0, sums, fmt.Errorf("no %s column", name)
		}
		cols = append(cols, idx[0])
	}
	rr, err := fr.GetRecordReader(ctx, cols, nil)
	if err != nil {
		return 0, sums, err
	}
	defer rr.Release()
	var rows int64
	for rr.Next() {
		rec := rr.Record()
		rows += rec.NumRows()
		for c := range 3 {
			col, ok := rec.Column(c).(*array.Int64)
			if !ok {
				return 0, sums, fmt.Errorf("column %d is not int64", c)
			}
			for i := 0; i < col.Len(); i++ {
				if col.IsValid(i) {
					sums[c] += col.Value(i)
				}
			}
		}
	}
	// The reader ends with io.EOF; anything else means the file could not be read to its end.
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return 0, sums, err
	}
	return rows, sums, nil
}

// ReadPracticeTable reads a practice's table written by Run from its Arrow IPC bytes and
// calls fn for every row in order. The row passed to fn is reused; its strings are safe to
// keep (none holds on to the table's decoded buffers). It returns the schema metadata.
func ReadPracticeTable(data []byte, fn func(*PracticeRow) error) (map[string]string, error) {
	var r PracticeRow
	var lastPeriod, lastPractice, lastRun string
	return readTable(data, KindPractices, func(rec arrow.Record) error {
		practice := rec.Column(0).(*array.String)
		run := rec.Column(1).(*array.String)
		period := rec.Column(2).(*array.String)
		measure := rec.Column(3).(*array.String)
		band := rec.Column(4).(*array.String)
		sex := rec.Column(5).(*array.String)
		count := rec.Column(6).(*array.Int64)
		status := rec.Column(7).(*array.String)
		lower := rec.Column(8).(*array.Int64)
		upper := rec.Column(9).(*array.Int64)
		for j := 0; j < int(rec.NumRows()); j++ {
			if s := period.Value(j); s != lastPeriod {
				p, err := formats.ParsePeriod(s)
				if err != nil {
					return fmt.Errorf("row %d of a practice table: %w", j, err)
				}
				lastPeriod, r.Period = strings.Clone(s), p
			}
			if s := practice.Value(j); s != lastPractice {
				lastPractice = strings.Clone(s)
			}
			if s := run.Value(j); s != lastRun {
				lastRun = strings.Clone(s)
			}
			r.Practice, r.RunID = lastPractice, lastRun
			r.Measure, r.AgeBand, r.Sex = intern(measure.Value(j)), intern(band.Value(j)), intern(sex.Value(j))
			r.Protected = formats.Protected{Status: intern(status.Value(j))}
			if count.IsValid(j) {
				r.Count = count.Value(j)
			}
			if lower.IsValid(j) && upper.IsValid(j) {
				r.Lower, r.Upper = lower.Value(j), upper.Value(j)
			}
			if err := fn(&r); err != nil {
				return err
			}
		}
		return nil
	})
}

// ReadFederationTable reads federation.arrow and calls fn for every figure in order, as the
// engine gave it: From and To are the first and last months of its period.
func ReadFederationTable(data []byte, fn func(*figures.Figure) error) (map[string]string, error) {
	var lastPeriod, from, to string
	return readTable(data, KindFederation, func(rec arrow.Record) error {
		str := func(i, j int) string { return strings.Clone(rec.Column(i).(*array.String).Value(j)) }
		optI := func(i, j int) *int64 {
			c := rec.Column(i).(*array.Int64)
			if c.IsNull(j) {
				return nil
			}
			v := c.Value(j)
			return &v
		}
		optF := func(i, j int) *float64 {
			c := rec.Column(i).(*array.Float64)
			if c.IsNull(j) {
				return nil
			}
			v := c.Value(j)
			return &v
		}
		for j := 0; j < int(rec.NumRows()); j++ {
			if period := rec.Column(0).(*array.String).Value(j); period != lastPeriod {
				p, err := formats.ParsePeriod(period)
				if err != nil {
					return fmt.Errorf("row %d of the federation table: %w", j, err)
				}
				lastPeriod, from, to = strings.Clone(period), p.Start.String(), p.End().String()
			}
			f := figures.Figure{Period: lastPeriod, From: from, To: to, Measure: str(2, j), AgeBand: str(3, j), Sex: str(4, j), Status: str(5, j),
				Count: optI(6, j), Lower: *optI(7, j), Upper: *optI(8, j), PublishedSum: *optI(9, j), Method: str(10, j),
				ListSize: optI(11, j), ListLower: optF(12, j), ListUpper: optF(13, j), Rate: optF(14, j), RateLower: optF(15, j),
				RateUpper: optF(16, j), DSR: optF(17, j), DSRCILower: optF(18, j), DSRCIUpper: optF(19, j), DSRAtLower: optF(20, j),
				DSRAtUpper: optF(21, j), Practices: *optI(22, j), Note: str(23, j)}
			f.Secure = f.Method == figures.MethodSecure
			if f.AgeBand == formats.All {
				f.AgeBand = ""
			}
			if f.Sex == formats.All {
				f.Sex = ""
			}
			if err := fn(&f); err != nil {
				return err
			}
		}
		return nil
	})
}

// readTable checks a combined table's framing and schema and calls fn for each batch.
func readTable(data []byte, kind string, fn func(arrow.Record) error) (md map[string]string, err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok && errors.Is(e, errTableAlloc) {
				err = fmt.Errorf("the combined table would need more than %d MiB to decode (a compression bomb or a corrupt length); run 'tributary-coordinator combine' again", MaxTableDecodedBytes>>20)
				return
			}
			err = fmt.Errorf("the combined table is malformed (%v); run 'tributary-coordinator combine' again", r)
		}
	}()
	// Arrow's reader can allocate without bound, or abort the process, on a hostile schema:
	// check the framing first, as formats does for every file it reads.
	if err := formats.CheckIPCFile(data, MaxTableDecodedBytes); err != nil {
		return nil, fmt.Errorf("the combined table is not a readable Arrow file (%w); run 'tributary-coordinator combine' again", err)
	}
	mem := &tableAllocator{mem: memory.NewGoAllocator()}
	rdr, err := ipc.NewFileReader(bytes.NewReader(data), ipc.WithAllocator(mem))
	if err != nil {
		return nil, fmt.Errorf("the combined table is not an Arrow IPC file: %w", err)
	}
	defer rdr.Close()
	schema := rdr.Schema()
	md = map[string]string{}
	for i, k := range schema.Metadata().Keys() {
		md[k] = schema.Metadata().Values()[i]
	}
	if got := md[formats.MetaKind]; got != kind {
		return nil, fmt.Errorf("the table's kind is %q, not a %s table", got, kind)
	}
	if v := md[formats.MetaFormatVersion]; v != itoa(Version) {
		return nil, fmt.Errorf("the %s table is of combined format %q, this build reads %d; run 'tributary-coordinator combine' again with this version", kind, v, Version)
	}
	if !Schema(kind, nil).Equal(arrow.NewSchema(schema.Fields(), nil)) {
		return nil, fmt.Errorf("the %s table does not have the expected columns; run 'tributary-coordinator combine' again with this version", kind)
	}
	for n := 0; n < rdr.NumRecords(); n++ {
		rec, err := rdr.Record(n)
		if err != nil {
			return nil, fmt.Errorf("record batch %d of the %s table: %w", n, kind, err)
		}
		if err := fn(rec); err != nil {
			return nil, err
		}
	}
	return md, nil
}

// MaxTableDecodedBytes bounds the memory ReadTable may allocate for one table, decompressed
// buffers included: a federation's largest table decodes to a few tens of MiB.
const MaxTableDecodedBytes = 512 << 20

var errTableAlloc = errors.New("table allocation limit")

// tableAllocator panics (recovered by ReadTableMonths) once a reader has allocated more than
// its budget, which Arrow does from a buffer's claimed length before inflating anything.
// Freed memory is not given back: one table is read once.
type tableAllocator struct {
	mem  memory.Allocator
	used atomic.Int64
}

func (a *tableAllocator) take(n int) {
	if n > 0 && a.used.Add(int64(n)) > MaxTableDecodedBytes {
		panic(errTableAlloc)
	}
}

func (a *tableAllocator) Allocate(size int) []byte {
	if size < 0 {
		panic(errTableAlloc)
	}
	a.take(size)
	return a.mem.Allocate(size)
}

func (a *tableAllocator) Reallocate(size int, b []byte) []byte {
	a.take(size - len(b))
	return a.mem.Reallocate(size, b)
}

func (a *tableAllocator) Free(b []byte) { a.mem.Free(b) }

// vocabulary maps every label a table can hold to one string of its own, so rows read from a
// table do not keep the table's buffers alive (an Arrow string aliases its buffer).
var vocabulary = func() map[string]string {
	m := map[string]string{}
	for _, list := range [][]string{formats.Measures, formats.AgeBands, formats.Sexes,
		{formats.All, formats.StatusRounded, formats.StatusSuppressed, formats.StatusWithheld, StatusPartial}} {
		for _, s := range list {
			m[s] = s
		}
	}
	return m
}()

func intern(s string) string {
	if v, ok := vocabulary[s]; ok {
		return v
	}
	return strings.Clone(s)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// seekBuffer lets Arrow's file writer, which only ever asks for its current position, write
// into a bytes.Buffer.
type seekBuffer struct{ *bytes.Buffer }

func (b *seekBuffer) Seek(offset int64, whence int) (int64, error) {
	if offset != 0 || whence != io.SeekCurrent {
		return 0, errors.New("seekBuffer: only Seek(0, io.SeekCurrent) is supported")
	}
	return int64(b.Len()), nil
}
