package formats

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	flatbuffers "github.com/google/flatbuffers/go"
	"github.com/klauspost/compress/zstd"
)

// The Arrow IPC reader trusts the lengths inside a file: it allocates a message's metadata
// from the length prefix of a stream, and the zstd decoder allocates twice the window size a
// frame header claims (up to 1 GiB, or more for a single-segment frame) before it inflates a
// byte. Neither allocation goes through the limited allocator. checkIPCFile and
// checkIPCStream walk the file's own framing first, reading the flatbuffers exactly as the
// Arrow reader does, and refuse anything whose lengths do not fit inside the bytes or whose
// compressed buffers would cost more than the limit. Any panic in here (an offset outside the
// flatbuffer) is turned into ErrCorrupt by the caller's guard.

// Offsets of the flatbuffer fields used below (Arrow's File.fbs, Message.fbs, Schema.fbs).
const (
	fbFooterSchema         = 6
	fbSchemaFields         = 6
	fbSchemaMetadata       = 8
	fbFieldTypeType        = 8
	fbFieldDictionary      = 12
	fbFieldChildren        = 14
	fbFieldMetadata        = 16
	fbHeaderSchema         = 1
	maxSchemaFields        = 256
	fbFooterDictionaries   = 8
	fbFooterRecordBatches  = 10
	fbMessageHeaderType    = 6
	fbMessageHeader        = 8
	fbMessageBodyLength    = 10
	fbDictionaryBatchData  = 6
	fbRecordBatchBuffers   = 8
	fbRecordBatchCompress  = 10
	fbCompressionCodec     = 4
	fbBlockSize            = 24 // struct Block { offset: long; metaDataLength: int; bodyLength: long }
	fbBufferSize           = 16 // struct Buffer { offset: long; length: long }
	fbHeaderDictionary     = 2
	fbHeaderRecordBatch    = 3
	fbCodecZstd            = 1
	ipcContinuation        = 0xFFFFFFFF
	arrowMagicLen          = 6 // "ARROW1"
	maxZstdWindow          = 8 << 20
	minZstdWindow          = 1 << 10
	compressedLengthPrefix = 8
	// What the Arrow reader spends on each message besides its buffers (record structures,
	// and for a compressed one a fresh zstd decoder with its block buffers), charged to the
	// budget so that a footer listing a block a million times costs an error, not minutes.
	messageOverhead    = 64 << 10
	decompressOverhead = 1 << 20
)

var (
	errFraming = errors.New("a length inside the file points outside it")
	errShape   = errors.New("nested, dictionary-encoded or unsupported column types")
)

// Arrow's Type union members a row or submission column may have: flat values only. Nested
// and view types make the Arrow reader recurse or allocate from counts in the file.
var flatTypes = map[byte]bool{
	2:  true, // Int
	3:  true, // FloatingPoint
	4:  true, // Binary
	5:  true, // Utf8
	6:  true, // Bool
	8:  true, // Date
	9:  true, // Time
	10: true, // Timestamp
	18: true, // Duration
}

// decodeBudget is what a whole file may cost to decode: every message body copied and every
// compressed buffer inflated, summed over all the blocks the footer lists (a footer could
// list one block a million times).
type decodeBudget struct {
	left   int64
	window int64 // zstd decoder history already charged: decoders are reused, not stacked
}

func (b *decodeBudget) spend(n int64) error {
	if n < 0 || n > b.left {
		return errAllocLimit
	}
	b.left -= n
	return nil
}

// checkIPCFile validates the framing of an Arrow IPC file within limit bytes of decoding.
func checkIPCFile(data []byte, limit int64) error {
	budget := decodeBudget{left: limit}
	return walkIPCFile(data, func(meta, body []byte) error { return checkMessage(meta, body, &budget) })
}

// checkIPCStream validates the framing of an Arrow IPC stream within limit bytes of decoding.
func checkIPCStream(data []byte, limit int64) error {
	budget := decodeBudget{left: limit}
	return walkIPCStream(data, func(meta, body []byte) error { return checkMessage(meta, body, &budget) })
}

// walkIPCFile calls fn with the metadata flatbuffer and the body of every message the file's
// footer lists, as the Arrow file reader finds them.
func walkIPCFile(data []byte, fn func(meta, body []byte) error) error {
	const trailer = 4 + arrowMagicLen
	if len(data) < 2*arrowMagicLen+4 {
		return nil // the Arrow reader reports a file this short itself
	}
	size := int64(binary.LittleEndian.Uint32(data[len(data)-trailer:]))
	if size <= 0 || size+trailer > int64(len(data)) {
		return nil // likewise: Arrow refuses an inconsistent footer length before using it
	}
	footer := data[int64(len(data))-trailer-size : len(data)-trailer]
	t := flatbuffers.Table{Bytes: footer, Pos: flatbuffers.GetUOffsetT(footer)}
	if o := flatbuffers.UOffsetT(t.Offset(fbFooterSchema)); o != 0 {
		if err := checkSchemaFB(flatbuffers.Table{Bytes: footer, Pos: t.Indirect(o + t.Pos)}); err != nil {
			return err
		}
	}
	for _, slot := range []flatbuffers.VOffsetT{fbFooterDictionaries, fbFooterRecordBatches} {
		o := flatbuffers.UOffsetT(t.Offset(slot))
		if o == 0 {
			continue
		}
		start, n := t.Vector(o), t.VectorLen(o)
		for j := 0; j < n; j++ {
			p := start + flatbuffers.UOffsetT(j*fbBlockSize)
			off := t.GetInt64(p)
			meta := int64(t.GetInt32(p + 8))
			body := t.GetInt64(p + 16)
			if off < 0 || meta < 8 || body < 0 || off > int64(len(data)) || meta > int64(len(data))-off || body > int64(len(data))-off-meta {
				return errFraming
			}
			m := data[off : off+meta]
			switch binary.LittleEndian.Uint32(m) {
			case 0:
			case ipcContinuation:
				m = m[8:]
			default:
				m = m[4:]
			}
			if err := fn(m, data[off+meta:off+meta+body]); err != nil {
				return err
			}
		}
	}
	return nil
}

// walkIPCStream calls fn with the metadata flatbuffer and the body of every message of a
// stream, checking each length prefix against the bytes that are left.
func walkIPCStream(data []byte, fn func(meta, body []byte) error) error {
	rest := data
	for len(rest) >= 4 {
		n := int64(int32(binary.LittleEndian.Uint32(rest)))
		rest = rest[4:]
		switch uint32(n) {
		case 0:
			return nil
		case ipcContinuation:
			if len(rest) < 4 {
				return nil
			}
			n = int64(int32(binary.LittleEndian.Uint32(rest)))
			rest = rest[4:]
			if n == 0 {
				return nil
			}
		}
		if n < 0 || n > int64(len(rest)) {
			return errFraming
		}
		meta := rest[:n]
		rest = rest[n:]
		t := flatbuffers.Table{Bytes: meta, Pos: flatbuffers.GetUOffsetT(meta)}
		if t.GetByteSlot(fbMessageHeaderType, 0) == fbHeaderSchema {
			var schema flatbuffers.Table
			if o := flatbuffers.UOffsetT(t.Offset(fbMessageHeader)); o != 0 {
				t.Union(&schema, o)
				if err := checkSchemaFB(schema); err != nil {
					return err
				}
			}
		}
		body := t.GetInt64Slot(fbMessageBodyLength, 0)
		if body < 0 || body > int64(len(rest)) {
			return errFraming
		}
		if err := fn(meta, rest[:body]); err != nil {
			return err
		}
		rest = rest[body:]
	}
	return nil
}

// checkSchemaFB checks a Schema flatbuffer before the Arrow reader turns it into Go values:
// that its vectors fit inside the bytes (the reader makes a slice of whatever length a vector
// claims) and that every field is flat, so that no child or dictionary is followed (a child
// offset pointing back at its parent would recurse until the stack runs out).
func checkSchemaFB(s flatbuffers.Table) error {
	if err := checkVector(&s, fbSchemaMetadata, flatbuffers.SizeUOffsetT); err != nil {
		return err
	}
	o := flatbuffers.UOffsetT(s.Offset(fbSchemaFields))
	if o == 0 {
		return nil
	}
	if err := checkVector(&s, fbSchemaFields, flatbuffers.SizeUOffsetT); err != nil {
		return err
	}
	start, n := s.Vector(o), s.VectorLen(o)
	if n > maxSchemaFields {
		return errShape
	}
	for j := 0; j < n; j++ {
		p := start + flatbuffers.UOffsetT(j*flatbuffers.SizeUOffsetT)
		f := flatbuffers.Table{Bytes: s.Bytes, Pos: s.Indirect(p)}
		if c := flatbuffers.UOffsetT(f.Offset(fbFieldChildren)); c != 0 && f.VectorLen(c) != 0 {
			return errShape
		}
		if f.Offset(fbFieldDictionary) != 0 || !flatTypes[f.GetByteSlot(fbFieldTypeType, 0)] {
			return errShape
		}
		if err := checkVector(&f, fbFieldMetadata, flatbuffers.SizeUOffsetT); err != nil {
			return err
		}
	}
	return nil
}

// checkVector reports errFraming unless the vector in slot, of elements of size bytes, lies
// inside the table's bytes.
func checkVector(t *flatbuffers.Table, slot flatbuffers.VOffsetT, size int) error {
	o := flatbuffers.UOffsetT(t.Offset(slot))
	if o == 0 {
		return nil
	}
	if uint64(t.Vector(o))+uint64(t.VectorLen(o))*uint64(size) > uint64(len(t.Bytes)) {
		return errFraming
	}
	return nil
}

// checkMessage charges a message's body to the budget and inflates, within it, every
// compressed buffer, so the Arrow reader only ever sees frames that are known to fit.
func checkMessage(meta, body []byte, budget *decodeBudget) error {
	if err := budget.spend(int64(len(body)) + messageOverhead); err != nil {
		return err
	}
	first := true
	return compressedBuffers(meta, body, func(zstdCodec bool, buf []byte) error {
		if first {
			first = false
			if err := budget.spend(decompressOverhead); err != nil {
				return err
			}
		}
		claimed := int64(binary.LittleEndian.Uint64(buf))
		if claimed == -1 {
			return nil // stored uncompressed
		}
		if err := budget.spend(claimed); err != nil {
			return err
		}
		if zstdCodec {
			return checkZstd(buf[compressedLengthPrefix:], claimed, budget)
		}
		return nil
	})
}

// compressedBuffers calls fn with each non-empty buffer of a compressed record batch or
// dictionary batch message, length prefix included; the slices alias body.
func compressedBuffers(meta, body []byte, fn func(zstdCodec bool, buf []byte) error) error {
	msg := flatbuffers.Table{Bytes: meta, Pos: flatbuffers.GetUOffsetT(meta)}
	var batch flatbuffers.Table
	o := flatbuffers.UOffsetT(msg.Offset(fbMessageHeader))
	if o == 0 {
		return nil
	}
	msg.Union(&batch, o)
	switch msg.GetByteSlot(fbMessageHeaderType, 0) {
	case fbHeaderRecordBatch:
	case fbHeaderDictionary:
		d := flatbuffers.UOffsetT(batch.Offset(fbDictionaryBatchData))
		if d == 0 {
			return nil
		}
		batch = flatbuffers.Table{Bytes: batch.Bytes, Pos: batch.Indirect(d + batch.Pos)}
	default:
		return nil
	}
	c := flatbuffers.UOffsetT(batch.Offset(fbRecordBatchCompress))
	if c == 0 {
		return nil
	}
	comp := flatbuffers.Table{Bytes: batch.Bytes, Pos: batch.Indirect(c + batch.Pos)}
	zstdCodec := comp.GetByteSlot(fbCompressionCodec, 0) == fbCodecZstd
	b := flatbuffers.UOffsetT(batch.Offset(fbRecordBatchBuffers))
	if b == 0 {
		return nil
	}
	start, n := batch.Vector(b), batch.VectorLen(b)
	for j := 0; j < n; j++ {
		p := start + flatbuffers.UOffsetT(j*fbBufferSize)
		off, length := batch.GetInt64(p), batch.GetInt64(p+8)
		if length == 0 {
			continue
		}
		if off < 0 || length < compressedLengthPrefix || off > int64(len(body)) || length > int64(len(body))-off {
			return errFraming
		}
		if err := fn(zstdCodec, body[off:off+length]); err != nil {
			return err
		}
	}
	return nil
}

// checkZstd inflates frames into nothing and requires them to hold exactly claimed bytes,
// with no window larger than maxZstdWindow or than the buffer itself. The history the Arrow
// reader's decoder will allocate (twice the window) is charged to the budget once, at the
// largest window seen: Arrow decodes one buffer at a time, so decoders do not stack up, and a
// file of many batches is not charged a window per buffer.
func checkZstd(frames []byte, claimed int64, budget *decodeBudget) error {
	var h zstd.Header
	if err := h.Decode(frames); err == nil && !h.Skippable {
		window := h.WindowSize
		if h.SingleSegment {
			window = max(h.FrameContentSize, minZstdWindow)
		}
		if window > maxZstdWindow && window > uint64(claimed) {
			return errAllocLimit
		}
		if history := 2 * int64(window); history > budget.window {
			if err := budget.spend(history - budget.window); err != nil {
				return err
			}
			budget.window = history
		}
	}
	dec, err := zstd.NewReader(bytes.NewReader(frames),
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(maxZstdWindow),
		// The window, not the content, sizes the history: a 512 KiB buffer may sit in a frame
		// with a 1 MiB window. The output itself is held to claimed+1 bytes below.
		zstd.WithDecoderMaxMemory(uint64(max(claimed, maxZstdWindow))))
	if err != nil {
		return err
	}
	defer dec.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(dec, claimed+1))
	switch {
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		return errAllocLimit
	case err != nil:
		return fmt.Errorf("compressed buffer: %w", err)
	case n > claimed:
		return errAllocLimit
	case n < claimed:
		return fmt.Errorf("compressed buffer holds %d bytes, its header says %d", n, claimed)
	}
	return nil
}
