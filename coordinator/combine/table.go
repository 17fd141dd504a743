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

// PracticeRow is one value of a practice's table: one value the practice published, from
// the run combined for its period.
type PracticeRow struct {
	Practice string
	RunID    string
	Period   formats.Period
	Measure  string
	AgeBand  string // a band or formats.All
	Sex      string // a sex or formats.All
	formats.Protected
}

// PracticeBlock is one row of a practice's table: one period and measure, every shape's value
// in shape order (formats.ShapeLabels), all from one run.
type PracticeBlock struct {
	Practice string // from the table's metadata (formats.MetaPractice)
	Period   formats.Period
	Measure  string
	RunID    string
	Values   [formats.NumShapes]formats.Protected
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

	// practiceFields are a practice table's columns: like a submission's, one row per period
	// and measure with one int32 column per shape holding formats.EncodeValue's code (bounds
	// follow from the policy in the metadata), and the run each row came from. A row of
	// values with string columns made the tables 17 times the size of their inputs and most
	// of a combine's CPU.
	practiceFields = func() []arrow.Field {
		f := []arrow.Field{required("period", str), required("measure", str), required("run_id", str)}
		for i := range formats.NumShapes {
			f = append(f, required(formats.ShapeName(i), arrow.PrimitiveTypes.Int32))
		}
		return f
	}()
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

// tableWriter writes the federation table's rows to an Arrow IPC file (zstd) and a Parquet
// file at once, in batches, so a table larger than memory as Go values never has to be held.
type tableWriter struct {
	kind     string
	schema   *arrow.Schema
	b        *array.RecordBuilder
	arrowBuf bytes.Buffer
	pqBuf    bytes.Buffer
	ipcw     *ipc.FileWriter // nil for parquetOnly
	pqw      *pqarrow.FileWriter
	rows     int64
	sums     [3]int64 // count, lower, upper: checked when the Parquet file is read back
}

// tableOutputs says which files a tableWriter makes.
type tableOutputs int

const (
	// arrowAndParquet is federation.arrow (zstd) and federation.parquet (zstd).
	arrowAndParquet tableOutputs = iota
	// parquetOnly is one month of the Parquet dataset, Snappy-compressed: the Parquet
	// writer of arrow/go v17 builds a new zstd encoder for every page it compresses, which
	// over a dataset of small monthly files cost a tenth of a combine's CPU in allocation
	// alone; Snappy needs no state, and every engine reads it.
	parquetOnly
)

// newTableWriter starts a table.
func newTableWriter(kind string, md map[string]string, out tableOutputs) (*tableWriter, error) {
	t := &tableWriter{kind: kind, schema: Schema(kind, md)}
	t.b = array.NewRecordBuilder(memory.NewGoAllocator(), t.schema)
	codec := compress.Codecs.Snappy
	if out == arrowAndParquet {
		var err error
		t.ipcw, err = ipc.NewFileWriter(&seekBuffer{Buffer: &t.arrowBuf}, ipc.WithSchema(t.schema), ipc.WithZstd())
		if err != nil {
			return nil, err
		}
		codec = compress.Codecs.Zstd
	}
	props := parquet.NewWriterProperties(
		parquet.WithCompression(codec),
		parquet.WithDictionaryDefault(true),
		parquet.WithMaxRowGroupLength(batchRows),
		parquet.WithCreatedBy("tributary-coordinator"),
	)
	var err error
	t.pqw, err = pqarrow.NewFileWriter(t.schema, &t.pqBuf, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return nil, err
	}
	return t, nil
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
	if t.ipcw != nil {
		if err := t.ipcw.Write(rec); err != nil {
			return fmt.Errorf("write %s table (arrow): %w", t.kind, err)
		}
	}
	if err := t.pqw.Write(rec); err != nil {
		return fmt.Errorf("write %s table (parquet): %w", t.kind, err)
	}
	return nil
}

// finish closes the files and reads the Parquet one back, checking its rows and totals, so a
// combine never publishes a Parquet file that does not hold what it meant to write.
// arrowData is nil for parquetOnly.
func (t *tableWriter) finish(ctx context.Context) (_, pqData []byte, err error) {
	defer t.b.Release()
	if err := t.flush(); err != nil {
		return nil, nil, err
	}
	if t.ipcw != nil {
		if err := t.ipcw.Close(); err != nil {
			return nil, nil, fmt.Errorf("close %s table (arrow): %w", t.kind, err)
		}
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
	var arrowData []byte
	if t.ipcw != nil {
		arrowData = t.arrowBuf.Bytes()
	}
	return arrowData, t.pqBuf.Bytes(), nil
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

// writePracticeTable encodes a practice's blocks as its table (Arrow IPC, LZ4: a combine
// writes one per practice, and LZ4 costs a fifth less CPU than zstd for a fifth more bytes).
// md must name the practice (formats.MetaPractice) and the policy (formats.MetaPolicy); every
// value must be one that policy publishes, which is checked by decoding it back, so a table
// never reads back other than it was meant.
func writePracticeTable(md map[string]string, blocks []PracticeBlock) ([]byte, error) {
	pol, err := formats.PolicyByName(md[formats.MetaPolicy])
	if err != nil {
		return nil, err
	}
	m := arrow.MetadataFrom(md)
	schema := arrow.NewSchema(practiceFields, &m)
	b := array.NewRecordBuilder(memory.NewGoAllocator(), schema)
	defer b.Release()
	b.Reserve(len(blocks))
	f := b.Fields()
	period := f[0].(*array.StringBuilder)
	measure := f[1].(*array.StringBuilder)
	run := f[2].(*array.StringBuilder)
	var cols [formats.NumShapes]*array.Int32Builder
	for i := range cols {
		cols[i] = f[3+i].(*array.Int32Builder)
	}
	for bi := range blocks {
		blk := &blocks[bi]
		period.Append(blk.Period.String())
		measure.Append(blk.Measure)
		run.Append(blk.RunID)
		for i, v := range blk.Values {
			code := formats.EncodeValue(v)
			if back, err := formats.DecodeValue(pol, code); err != nil || back != v {
				return nil, fmt.Errorf("practice %s, %s %s %s: the value %+v is not one %s publishes", md[formats.MetaPractice], blk.Period, blk.Measure, formats.ShapeName(i), v, pol.Name)
			}
			cols[i].Append(code)
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	var buf bytes.Buffer
	w, err := ipc.NewFileWriter(&seekBuffer{Buffer: &buf}, ipc.WithSchema(schema), ipc.WithLZ4())
	if err != nil {
		return nil, err
	}
	if err := w.Write(rec); err != nil {
		return nil, fmt.Errorf("write the table of practice %s: %w", md[formats.MetaPractice], err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("write the table of practice %s: %w", md[formats.MetaPractice], err)
	}
	return buf.Bytes(), nil
}

// ReadPracticeBlocks reads a practice's table written by Run from its Arrow IPC bytes and
// calls fn for every row in order, each value decoded under the policy the table names. The
// block passed to fn is reused; its strings are safe to keep. It returns the schema metadata
// (formats.MetaPractice names the practice).
func ReadPracticeBlocks(data []byte, fn func(*PracticeBlock) error) (map[string]string, error) {
	var blk PracticeBlock
	var lastPeriod, lastRun string
	var pol formats.Policy
	return readTable(data, KindPractices, func(md map[string]string, rec arrow.Record) error {
		if pol.Name == "" {
			p, err := formats.PolicyByName(md[formats.MetaPolicy])
			if err != nil {
				return fmt.Errorf("the practice table: %w", err)
			}
			pol = p
			blk.Practice = strings.Clone(md[formats.MetaPractice])
		}
		for i := range rec.NumCols() {
			if rec.Column(int(i)).NullN() > 0 {
				return fmt.Errorf("column %s of the practice table holds a null; run 'tributary-coordinator combine' again", rec.ColumnName(int(i)))
			}
		}
		period := rec.Column(0).(*array.String)
		measure := rec.Column(1).(*array.String)
		run := rec.Column(2).(*array.String)
		var cols [formats.NumShapes][]int32
		for i := range cols {
			cols[i] = rec.Column(3 + i).(*array.Int32).Int32Values()
		}
		for j := 0; j < int(rec.NumRows()); j++ {
			if s := period.Value(j); s != lastPeriod || j == 0 {
				p, err := formats.ParsePeriod(s)
				if err != nil {
					return fmt.Errorf("row %d of the practice table: %w", j, err)
				}
				lastPeriod, blk.Period = strings.Clone(s), p
			}
			if s := run.Value(j); s != lastRun || j == 0 {
				lastRun = strings.Clone(s)
			}
			blk.RunID, blk.Measure = lastRun, intern(measure.Value(j))
			for i := range cols {
				v, err := formats.DecodeValue(pol, cols[i][j])
				if err != nil {
					return fmt.Errorf("row %d of the practice table, %s: %w", j, formats.ShapeName(i), err)
				}
				blk.Values[i] = v
			}
			if err := fn(&blk); err != nil {
				return err
			}
		}
		return nil
	})
}

// ReadPracticeTable is ReadPracticeBlocks one value at a time, in shape order within each row.
// The row passed to fn is reused; its strings are safe to keep.
func ReadPracticeTable(data []byte, fn func(*PracticeRow) error) (map[string]string, error) {
	var r PracticeRow
	return ReadPracticeBlocks(data, func(b *PracticeBlock) error {
		r.Practice, r.RunID, r.Period, r.Measure = b.Practice, b.RunID, b.Period, b.Measure
		for i, v := range b.Values {
			r.AgeBand, r.Sex = formats.ShapeLabels(i)
			r.Protected = v
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
	return readTable(data, KindFederation, func(_ map[string]string, rec arrow.Record) error {
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
func readTable(data []byte, kind string, fn func(map[string]string, arrow.Record) error) (md map[string]string, err error) {
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
		if err := fn(md, rec); err != nil {
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
