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

	"github.com/tributary-health/tributary/formats"
)

// Row is one row of a combined table: a federation cell (Practice empty) or one practice's
// published cell (Practices 1).
type Row struct {
	Practice string
	Month    formats.Month
	Measure  string
	AgeBand  string
	Sex      string
	Count    int64 // sum of published values; meaningless when Status is suppressed
	Status   string
	Lower    int64 // the true count is at least Lower
	Upper    int64 // and at most Upper
	// ListSize is the published registered_patients value for the same month, age band and
	// sex, summed over the practices that contributed this measure: the denominator of a
	// crude rate. A suppressed list-size cell adds nothing.
	ListSize  int64
	Practices int64 // practices that contributed this measure in this month
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
	// MetaBatchMonths lists the month (YYYY-MM) of each record batch, comma-separated, in a
	// table written one batch per month, so readers can skip the months they do not want.
	MetaBatchMonths = "tributary.batch_months"
)

var (
	fieldsHead = []arrow.Field{
		{Name: "month", Type: arrow.BinaryTypes.String},
		{Name: "measure", Type: arrow.BinaryTypes.String},
		{Name: "age_band", Type: arrow.BinaryTypes.String},
		{Name: "sex", Type: arrow.BinaryTypes.String},
		{Name: "count", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "status", Type: arrow.BinaryTypes.String},
		{Name: "lower", Type: arrow.PrimitiveTypes.Int64},
		{Name: "upper", Type: arrow.PrimitiveTypes.Int64},
		{Name: "list_size", Type: arrow.PrimitiveTypes.Int64},
	}
	practiceField  = arrow.Field{Name: "practice", Type: arrow.BinaryTypes.String}
	practicesField = arrow.Field{Name: "practices", Type: arrow.PrimitiveTypes.Int64}
)

// Schema returns the Arrow schema of a combined table of kind (KindFederation or
// KindPractices) with the given metadata. The practice table leads with a practice column;
// the federation table ends with the number of practices contributing.
func Schema(kind string, md map[string]string) *arrow.Schema {
	var fields []arrow.Field
	if kind == KindPractices {
		fields = append([]arrow.Field{practiceField}, fieldsHead...)
	} else {
		fields = append(append([]arrow.Field{}, fieldsHead...), practicesField)
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

func (t *tableWriter) append(r *Row) error {
	i := 0
	if t.kind == KindPractices {
		t.b.Field(0).(*array.StringBuilder).Append(r.Practice)
		i = 1
	}
	t.b.Field(i).(*array.StringBuilder).Append(r.Month.String())
	t.b.Field(i + 1).(*array.StringBuilder).Append(r.Measure)
	t.b.Field(i + 2).(*array.StringBuilder).Append(r.AgeBand)
	t.b.Field(i + 3).(*array.StringBuilder).Append(r.Sex)
	if r.Status == formats.StatusSuppressed {
		t.b.Field(i + 4).(*array.Int64Builder).AppendNull()
	} else {
		t.b.Field(i + 4).(*array.Int64Builder).Append(r.Count)
		t.sums[0] += r.Count
	}
	t.b.Field(i + 5).(*array.StringBuilder).Append(r.Status)
	t.b.Field(i + 6).(*array.Int64Builder).Append(r.Lower)
	t.b.Field(i + 7).(*array.Int64Builder).Append(r.Upper)
	t.b.Field(i + 8).(*array.Int64Builder).Append(r.ListSize)
	if t.kind == KindFederation {
		t.b.Field(i + 9).(*array.Int64Builder).Append(r.Practices)
	}
	t.sums[1] += r.Lower
	t.sums[2] += r.Upper
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

// ReadTable reads a combined table written by Run from its Arrow IPC bytes and calls fn for
// every row in order. The Row passed to fn is reused: copy what you keep. Its strings are
// safe to keep: none of them holds on to the table's decoded buffers. It returns the table's
// schema metadata.
func ReadTable(data []byte, fn func(*Row) error) (md map[string]string, err error) {
	return ReadTableMonths(data, 0, 0, fn)
}

// ReadTableMonths is ReadTable for the rows of months from to to (inclusive; zero is open).
// Batches of a table that names their months (MetaBatchMonths) outside the range are not
// decoded; other rows outside it are still passed to fn, so fn must filter too.
func ReadTableMonths(data []byte, from, to formats.Month, fn func(*Row) error) (md map[string]string, err error) {
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
	kind := md[formats.MetaKind]
	if kind != KindFederation && kind != KindPractices {
		return nil, fmt.Errorf("the table's kind is %q, not a combined table", kind)
	}
	want := Schema(kind, nil)
	if !want.Equal(arrow.NewSchema(schema.Fields(), nil)) {
		return nil, fmt.Errorf("the %s table does not have the expected columns; run 'tributary-coordinator combine' again with this version", kind)
	}
	var batchMonths []string
	if v := md[MetaBatchMonths]; v != "" {
		batchMonths = strings.Split(v, ",")
		if len(batchMonths) != rdr.NumRecords() {
			batchMonths = nil
		}
	}
	var r Row
	for n := 0; n < rdr.NumRecords(); n++ {
		if batchMonths != nil {
			if m, err := formats.ParseMonth(batchMonths[n]); err == nil && ((from != 0 && m < from) || (to != 0 && m > to)) {
				continue
			}
		}
		rec, err := rdr.Record(n)
		if err != nil {
			return nil, fmt.Errorf("record batch %d of the %s table: %w", n, kind, err)
		}
		i := 0
		var practice *array.String
		if kind == KindPractices {
			practice = rec.Column(0).(*array.String)
			i = 1
		}
		month := rec.Column(i).(*array.String)
		measure := rec.Column(i + 1).(*array.String)
		band := rec.Column(i + 2).(*array.String)
		sex := rec.Column(i + 3).(*array.String)
		count := rec.Column(i + 4).(*array.Int64)
		status := rec.Column(i + 5).(*array.String)
		lower := rec.Column(i + 6).(*array.Int64)
		upper := rec.Column(i + 7).(*array.Int64)
		list := rec.Column(i + 8).(*array.Int64)
		var practices *array.Int64
		if kind == KindFederation {
			practices = rec.Column(i + 9).(*array.Int64)
		}
		var lastMonth, lastPractice string
		var m formats.Month
		for j := 0; j < int(rec.NumRows()); j++ {
			if s := month.Value(j); s != lastMonth {
				if m, err = formats.ParseMonth(s); err != nil {
					return nil, fmt.Errorf("row %d of the %s table: %w", j, kind, err)
				}
				lastMonth = s
			}
			r = Row{Month: m, Measure: intern(measure.Value(j)), AgeBand: intern(band.Value(j)), Sex: intern(sex.Value(j)),
				Status: intern(status.Value(j)), Lower: lower.Value(j), Upper: upper.Value(j), ListSize: list.Value(j), Practices: 1}
			if count.IsValid(j) {
				r.Count = count.Value(j)
			}
			if practice != nil {
				if p := practice.Value(j); p != lastPractice {
					lastPractice = strings.Clone(p)
				}
				r.Practice = lastPractice
			}
			if practices != nil {
				r.Practices = practices.Value(j)
			}
			if err := fn(&r); err != nil {
				return nil, err
			}
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
		{formats.StatusRounded, formats.StatusSuppressed, StatusPartial}} {
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
