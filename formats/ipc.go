package formats

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// Limits bound what a reader accepts from outside, so a hostile or broken file costs an error,
// not the process's memory.
type Limits struct {
	MaxObjectBytes  int64 // size of the object as stored
	MaxDecodedBytes int64 // memory the Arrow reader may allocate, decompressed buffers included
}

// DefaultLimits fit a practice's monthly file many times over (one month is about 30 KiB).
var DefaultLimits = Limits{MaxObjectBytes: 64 << 20, MaxDecodedBytes: 256 << 20}

var errAllocLimit = errors.New("allocation limit")

// limitedAllocator fails (by panic, recovered at the reader boundary) once more than limit
// bytes are live. Arrow's IPC reader allocates a decompressed buffer from the length the file
// claims before it inflates anything, so this stops compression bombs before they cost memory.
type limitedAllocator struct {
	mem   memory.Allocator
	limit int64
	used  atomic.Int64
}

func (a *limitedAllocator) Allocate(size int) []byte {
	if size < 0 || a.used.Add(int64(size)) > a.limit {
		panic(errAllocLimit)
	}
	return a.mem.Allocate(size)
}

func (a *limitedAllocator) Reallocate(size int, b []byte) []byte {
	if size < 0 || a.used.Add(int64(size-len(b))) > a.limit {
		panic(errAllocLimit)
	}
	return a.mem.Reallocate(size, b)
}

func (a *limitedAllocator) Free(b []byte) {
	a.used.Add(-int64(len(b)))
	a.mem.Free(b)
}

// guard turns a panic inside the Arrow library into an error of this package. Arrow's readers
// can panic on malformed bytes; nothing outside this package should ever see that.
func guard(op string, err *error) {
	r := recover()
	if r == nil {
		return
	}
	if e, ok := r.(error); ok && errors.Is(e, errAllocLimit) {
		*err = errorf(op, ErrTooLarge, "decoding needs more memory than the limit allows (a compression bomb or a corrupt length); the file was not read")
		return
	}
	*err = errorf(op, ErrCorrupt, "the Arrow data is malformed (%s); re-create the file", panicSummary(r))
}

func panicSummary(r any) string { return clean(fmt.Sprint(r), 120) }

// writeIPCFile writes one record as an Arrow IPC file with zstd-compressed buffers.
func writeIPCFile(w io.Writer, rec arrow.Record) (err error) {
	defer guard("write arrow file", &err)
	fw, err := ipc.NewFileWriter(&positionWriter{w: w}, ipc.WithSchema(rec.Schema()), ipc.WithZstd())
	if err != nil {
		return err
	}
	if err := fw.Write(rec); err != nil {
		return err
	}
	return fw.Close()
}

// positionWriter lets Arrow's file writer, which only ever asks for its current position,
// write to any io.Writer.
type positionWriter struct {
	w   io.Writer
	pos int64
}

func (p *positionWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.pos += int64(n)
	return n, err
}

func (p *positionWriter) Seek(offset int64, whence int) (int64, error) {
	if offset != 0 || whence != io.SeekCurrent {
		return 0, errors.New("positionWriter: only Seek(0, io.SeekCurrent) is supported")
	}
	return p.pos, nil
}

// readIPCFile opens an Arrow IPC file within the limits, hands its schema to checkSchema
// before any record is decoded, and then each record to fn.
func readIPCFile(op string, data []byte, lim Limits, checkSchema func(*arrow.Schema) error, fn func(arrow.Record) error) (err error) {
	if lim.MaxObjectBytes > 0 && int64(len(data)) > lim.MaxObjectBytes {
		return errorf(op, ErrTooLarge, "%d bytes, the limit is %d", len(data), lim.MaxObjectBytes)
	}
	defer guard(op, &err)
	mem := &limitedAllocator{mem: memory.NewGoAllocator(), limit: lim.MaxDecodedBytes}
	if mem.limit <= 0 {
		mem.limit = DefaultLimits.MaxDecodedBytes
	}
	if err := framingError(op, checkIPCFile(data, mem.limit)); err != nil {
		return err
	}
	rdr, err := ipc.NewFileReader(bytes.NewReader(data), ipc.WithAllocator(mem))
	if err != nil {
		return &Error{Op: op, Kind: ErrCorrupt, Detail: "not a complete Arrow IPC file (an upload cut short, or not a Tributary file); upload the run again", Err: err}
	}
	defer rdr.Close()
	if err := checkSchema(rdr.Schema()); err != nil {
		return err
	}
	for i := 0; i < rdr.NumRecords(); i++ {
		rec, err := rdr.Record(i)
		if err != nil {
			return &Error{Op: op, Kind: ErrCorrupt, Detail: fmt.Sprintf("record batch %d is unreadable", i), Err: err}
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return nil
}

// framingError turns what checkIPCFile or checkIPCStream found into this package's error.
func framingError(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errShape):
		return errorf(op, ErrSchema, "the Arrow schema has %s; the contract's columns are flat strings, numbers and dates", errShape)
	case errors.Is(err, errAllocLimit):
		return errorf(op, ErrTooLarge, "decoding needs more memory than the limit allows (a compression bomb or a corrupt length); the file was not read")
	default:
		return &Error{Op: op, Kind: ErrCorrupt, Detail: "the Arrow framing is inconsistent; re-create the file", Err: err}
	}
}

// EncodeBatch serialises one record as a self-contained Arrow IPC stream (schema and one
// batch). Plugins use it to send rows to the agent in gRPC messages.
func EncodeBatch(rec arrow.Record) (b []byte, err error) {
	defer guard("encode batch", &err)
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(rec.Schema()))
	if err := w.Write(rec); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DecodeBatch reads what EncodeBatch wrote, within maxBytes of decoded memory, and returns its
// single record; the caller releases it. Malformed bytes give ErrCorrupt, never a panic.
func DecodeBatch(b []byte, maxBytes int64) (rec arrow.Record, err error) {
	const op = "decode batch"
	defer guard(op, &err)
	if maxBytes <= 0 {
		maxBytes = DefaultLimits.MaxDecodedBytes
	}
	if err := framingError(op, checkIPCStream(b, maxBytes)); err != nil {
		return nil, err
	}
	mem := &limitedAllocator{mem: memory.NewGoAllocator(), limit: maxBytes}
	r, err := ipc.NewReader(bytes.NewReader(b), ipc.WithAllocator(mem))
	if err != nil {
		return nil, &Error{Op: op, Kind: ErrCorrupt, Detail: "not an Arrow IPC stream", Err: err}
	}
	defer r.Release()
	if !r.Next() {
		if r.Err() != nil {
			return nil, &Error{Op: op, Kind: ErrCorrupt, Detail: "unreadable record batch", Err: r.Err()}
		}
		return nil, errorf(op, ErrCorrupt, "the stream holds no record batch")
	}
	rec = r.Record()
	if err := checkColumns(rec); err != nil {
		return nil, &Error{Op: op, Kind: ErrCorrupt, Detail: "the record batch is inconsistent; the plugin wrote it wrongly", Err: err}
	}
	rec.Retain()
	if r.Next() {
		rec.Release()
		return nil, errorf(op, ErrCorrupt, "the stream holds more than one record batch")
	}
	return rec, nil
}

// checkColumns validates the buffers of every column against its length, as the Arrow reader
// does not: a string column's offsets could otherwise point anywhere, and reading a value
// would panic in the caller, outside this package's guard. Rows only carry flat columns
// (strings and fixed-width values), so anything else is refused.
func checkColumns(rec arrow.Record) error {
	for i, col := range rec.Columns() {
		name := rec.ColumnName(i)
		d := col.Data()
		n := d.Offset() + d.Len()
		bufs := d.Buffers()
		if int64(d.Len()) != rec.NumRows() || d.Offset() < 0 {
			return fmt.Errorf("column %s has %d rows, the batch %d", name, d.Len(), rec.NumRows())
		}
		if len(bufs) > 0 && bufs[0] != nil && int64(bufs[0].Len())*8 < int64(n) {
			return fmt.Errorf("column %s: validity bitmap shorter than the column", name)
		}
		// The null count comes from the file too, and Arrow trusts it (a writer slices the
		// bitmap by it).
		if nulls := d.NullN(); nulls < 0 || nulls > d.Len() || nulls > 0 && (len(bufs) == 0 || bufs[0] == nil) {
			return fmt.Errorf("column %s: null count does not fit the column", name)
		}
		switch t := col.DataType().(type) {
		case *arrow.StringType, *arrow.BinaryType:
			if len(bufs) != 3 {
				return fmt.Errorf("column %s: no offsets", name)
			}
			var offsets []int32
			if bufs[1] != nil {
				offsets = arrow.Int32Traits.CastFromBytes(bufs[1].Bytes())
			}
			if len(offsets) == 0 && n == 0 {
				continue // an empty column may carry no offsets at all
			}
			values := 0
			if bufs[2] != nil {
				values = bufs[2].Len()
			}
			if len(offsets) < n+1 {
				return fmt.Errorf("column %s: offsets shorter than the column", name)
			}
			prev := offsets[d.Offset()]
			if prev < 0 || int(prev) > values {
				return fmt.Errorf("column %s: offsets out of bounds", name)
			}
			for _, o := range offsets[d.Offset()+1 : n+1] {
				if o < prev || int(o) > values {
					return fmt.Errorf("column %s: offsets out of order or out of bounds", name)
				}
				prev = o
			}
		case arrow.FixedWidthDataType:
			if len(bufs) != 2 || bufs[1] == nil && n > 0 || bufs[1] != nil && int64(bufs[1].Len())*8 < int64(n)*int64(t.BitWidth()) {
				return fmt.Errorf("column %s: values shorter than the column", name)
			}
		default:
			return fmt.Errorf("column %s has type %s; rows carry only strings, dates and numbers", name, t)
		}
	}
	return nil
}

// CheckIPCFile checks the framing of an Arrow IPC file the way this package's own readers do
// before Arrow sees it: flat schema of at most 256 fields, vectors within their buffers, every
// compressed buffer inflating to exactly what it claims within maxDecodedBytes. Readers of
// other Arrow files from the store (the coordinator's combined tables) call it first, because
// Arrow's reader can allocate without bound, or abort the process, on bytes that fail it.
func CheckIPCFile(data []byte, maxDecodedBytes int64) error {
	if maxDecodedBytes <= 0 {
		maxDecodedBytes = DefaultLimits.MaxDecodedBytes
	}
	return framingError("check arrow file", checkIPCFile(data, maxDecodedBytes))
}
