package formats

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/klauspost/compress/zstd"
)

var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// zerosFrame is a hand-made zstd frame that inflates to n bytes of zeros (n a multiple of
// 128 KiB) from 4 bytes per 128 KiB: a 128 KiB window, no content size, and RLE blocks.
func zerosFrame(n int) []byte {
	const block = 128 << 10
	f := append(bytes.Clone(zstdMagic), 0x00, 7<<3) // descriptor: nothing optional; window 2^(10+7)
	for left := n; left > 0; left -= block {
		last := uint32(0)
		if left == block {
			last = 1
		}
		h := last | 1<<1 | block<<3 // Last_Block, Block_Type RLE, Block_Size
		f = append(f, byte(h), byte(h>>8), byte(h>>16), 0)
	}
	return f
}

// skippable is a zstd skippable frame of exactly n bytes (n >= 8), which decoders step over.
func skippable(n int) []byte {
	f := binary.LittleEndian.AppendUint32(nil, 0x184D2A50)
	f = binary.LittleEndian.AppendUint32(f, uint32(n-8))
	return append(f, make([]byte, n-8)...)
}

// bigBufferSubmission is a valid submission with one buffer large enough to hold a bomb: an
// extra measure whose name is 60 KiB of random letters, which zstd cannot shrink much. It
// returns the file and that buffer, which aliases the file's bytes.
func bigBufferSubmission(t *testing.T) ([]byte, []byte) {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	name := make([]byte, 60<<10)
	for i := range name {
		name[i] = 'a' + byte(r.IntN(26))
	}
	rows := sampleRows(t, sampleSubmission(practiceA))
	extra := rows[0]
	extra.measure = string(name)
	data := craftSubmission(t, submissionMeta(sampleSubmission(practiceA)), append(rows[:1:1], extra))
	var biggest []byte
	err := walkIPCFile(data, func(meta, body []byte) error {
		return compressedBuffers(meta, body, func(_ bool, buf []byte) error {
			if len(buf) > len(biggest) {
				biggest = buf
			}
			return nil
		})
	})
	if err != nil || len(biggest) < 40<<10 {
		t.Fatalf("no large compressed buffer found (%d bytes, %v)", len(biggest), err)
	}
	// The untouched file is a submission whose only fault is the measure name.
	if _, err := ReadSubmission(data, DefaultLimits); !isKind(err, ErrValue) {
		t.Fatalf("the carrier file reads as %v, want an invalid measure name", err)
	}
	return data, biggest
}

func isKind(err, kind error) bool {
	fe, ok := err.(*Error)
	return ok && fe.Kind == kind
}

// plant writes claimed and frames into buf, padding the rest with a skippable frame.
func plant(t *testing.T, buf []byte, claimed int64, frame []byte) {
	t.Helper()
	pad := len(buf) - compressedLengthPrefix - len(frame)
	if pad < 8 {
		t.Fatalf("the frame (%d bytes) does not fit in the buffer (%d bytes)", len(frame), len(buf))
	}
	binary.LittleEndian.PutUint64(buf, uint64(claimed))
	copy(buf[compressedLengthPrefix:], frame)
	copy(buf[compressedLengthPrefix+len(frame):], skippable(pad))
}

// allocated runs fn and returns the bytes it allocated on the heap.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestCompressionBombs feeds the readers files whose compressed buffers claim, or really
// hold, far more than the limit: each must be refused with ErrTooLarge before the memory is
// spent. Before the framing check, a 2.6 KB file with a patched zstd window descriptor cost
// 513 MiB; a stream's length prefix could ask for 2 GiB.
func TestCompressionBombs(t *testing.T) {
	const gib = 1 << 30
	bomb := zerosFrame(gib)
	if testing.Short() {
		t.Log("short: not inflating the 1 GiB frame to prove it")
	} else {
		dec, err := zstd.NewReader(bytes.NewReader(bomb), zstd.WithDecoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, dec)
		dec.Close()
		if err != nil || n != gib {
			t.Fatalf("the bomb frame inflates to %d bytes (%v), want 1 GiB", n, err)
		}
	}
	t.Logf("bomb frame: %d bytes inflating to 1 GiB", len(bomb))
	golden := mustMarshal(t, sampleSubmission(practiceA))
	firstFrame := bytes.Index(golden, zstdMagic)

	cases := []struct {
		name  string
		build func(t *testing.T) []byte
		read  func([]byte) error
	}{
		{"buffer claims 1 TiB", func(t *testing.T) []byte {
			b := bytes.Clone(golden)
			binary.LittleEndian.PutUint64(b[firstFrame-compressedLengthPrefix:], 1<<40)
			return b
		}, nil},
		{"buffer claims and holds 1 GiB of zeros", func(t *testing.T) []byte {
			data, buf := bigBufferSubmission(t)
			plant(t, buf, gib, bomb)
			return data
		}, nil},
		{"buffer claims 60 KiB but holds 1 GiB of zeros", func(t *testing.T) []byte {
			data, buf := bigBufferSubmission(t)
			plant(t, buf, int64(binary.LittleEndian.Uint64(buf)), bomb)
			return data
		}, nil},
		{"frame declares a 512 MiB window", func(t *testing.T) []byte {
			b := bytes.Clone(golden)
			// The first frame with a window descriptor (single-segment frames, flag 0x20 of
			// the frame header descriptor, have none).
			at := firstFrame
			for at >= 0 && b[at+4]&0x20 != 0 {
				next := bytes.Index(b[at+4:], zstdMagic)
				if next < 0 {
					t.Fatal("the sample file has no zstd frame with a window descriptor")
				}
				at += 4 + next
			}
			b[at+5] = 19 << 3 // window 2^(10+19)
			return b
		}, nil},
		{"single-segment frame declares 60 GiB of content", func(t *testing.T) []byte {
			data, buf := bigBufferSubmission(t)
			frame := append(bytes.Clone(zstdMagic), 0xE0) // FCS 8 bytes, single segment
			frame = binary.LittleEndian.AppendUint64(frame, 60<<30)
			frame = append(frame, 1, 0, 0) // an empty last raw block
			plant(t, buf, 16, frame)
			return data
		}, nil},
		{"stream message claims 2 GiB of metadata", func(t *testing.T) []byte {
			rb := NewRegistrationBuilder(nil)
			defer rb.Release()
			if err := rb.Append(sampleRegistrations[1]); err != nil {
				t.Fatal(err)
			}
			rec := rb.NewRecord()
			defer rec.Release()
			b, err := EncodeBatch(rec)
			if err != nil {
				t.Fatal(err)
			}
			binary.LittleEndian.PutUint32(b[4:], 0x7FFFFFF0)
			return b
		}, func(b []byte) error {
			rec, err := DecodeBatch(b, 0)
			if rec != nil {
				rec.Release()
			}
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := c.build(t)
			read := c.read
			if read == nil {
				read = func(b []byte) error { _, err := ReadSubmission(b, DefaultLimits); return err }
			}
			var err error
			n := allocated(func() { err = read(data) })
			want := ErrTooLarge
			if c.read != nil {
				want = ErrCorrupt // a length pointing past the end is a broken stream
			}
			checkError(t, err, want)
			t.Logf("%d-byte file refused after allocating %d KiB: %v", len(data), n>>10, err)
			if n > 16<<20 {
				t.Errorf("refusing the file allocated %d MiB; the limit must stop it before the memory is spent", n>>20)
			}
		})
	}
}

// TestDecodedLimit reads an honest file whose buffers inflate past a lowered limit.
func TestDecodedLimit(t *testing.T) {
	data, _ := bigBufferSubmission(t)
	_, err := ReadSubmission(data, Limits{MaxDecodedBytes: 32 << 10})
	checkError(t, err, ErrTooLarge, "limit")
	_, err = ReadSubmission(data, Limits{MaxObjectBytes: 1 << 10})
	checkError(t, err, ErrTooLarge, "the limit is 1024")
}

// TestRefusesNestedSchemas: Arrow's reader follows a schema's children and dictionaries from
// counts and offsets in the file (a child pointing at its parent recurses until the stack
// runs out, which no recover catches), so only flat columns reach it.
func TestRefusesNestedSchemas(t *testing.T) {
	mem := memory.NewGoAllocator()
	lb := array.NewListBuilder(mem, arrow.BinaryTypes.String)
	lb.Append(true)
	lb.ValueBuilder().(*array.StringBuilder).Append("PK-1")
	list := lb.NewArray()
	lb.Release()
	defer list.Release()
	rec := array.NewRecord(arrow.NewSchema([]arrow.Field{{Name: FieldPatientKey, Type: list.DataType()}}, nil), []arrow.Array{list}, 1)
	defer rec.Release()
	stream, err := EncodeBatch(rec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBatch(stream, 0)
	if got != nil {
		got.Release()
	}
	checkError(t, err, ErrSchema, "decode batch", "nested, dictionary-encoded or unsupported column types", "flat")

	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}
	fields := SubmissionSchema.Fields()
	fields[0].Type = dt
	file := craftFile(t, fields, submissionMeta(sampleSubmission(practiceA)), func(b *array.RecordBuilder) {
		b.Field(0).(*array.BinaryDictionaryBuilder).AppendString("2024-01")
		b.Field(1).(*array.StringBuilder).Append(RegisteredPatients)
		for i := range NumShapes {
			b.Field(2 + i).(*array.Int32Builder).Append(0)
		}
	})
	_, err = ReadSubmission(file, DefaultLimits)
	checkError(t, err, ErrSchema, "read submission", "dictionary-encoded")
}

// TestErrorTextIsOneLine: whatever a library's error says, an *Error prints as one bounded
// line.
func TestErrorTextIsOneLine(t *testing.T) {
	err := &Error{Op: "read submission", Subject: "practices/A\n1", Kind: ErrCorrupt, Detail: "x",
		Err: errors.New("line one\nline two\x00 \xff" + strings.Repeat("z", 1000))}
	msg := err.Error()
	if strings.ContainsAny(msg, "\n\x00") || !utf8.ValidString(msg) || len(msg) > 700 {
		t.Errorf("error text is not one bounded line: %q", msg)
	}
	if !strings.Contains(msg, "practices/A?1") || !strings.Contains(msg, "line one?line two?") {
		t.Errorf("error text lost its content: %q", msg)
	}
}
