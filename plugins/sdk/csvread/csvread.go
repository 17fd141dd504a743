// Package csvread reads the CSV files of a practice's export by header name, for extractor
// plugins: columns are found by name (so an export with extra, missing optional or reordered
// columns reads the same), a malformed row is reported for the extractor to skip rather than
// failing the file, and a damaged file fails the run with its name and line number instead of
// exhausting memory or silently swallowing rows. No error ever quotes a value from the file.
//
//	f, err := csvread.Open(filepath.Join(dir, "events.csv"), csvread.Options{Required: []string{"patient", "start"}})
//	if err != nil {
//		return err
//	}
//	defer f.Close()
//	cPatient, cStart, cEnd := f.Col("patient"), f.Col("start"), f.Col("end") // end is optional: -1 if absent
//	return f.Each(ctx, func(rec []string) error {
//		... rec[cPatient], rec[cStart], csvread.Field(rec, cEnd) ...
//	}, func() { w.Skip("events.csv: malformed row") })
package csvread

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Defaults for Options fields left zero.
const (
	// DefaultMaxRowBytes bounds one row: far above any real row of a clinical export, far
	// below what would hurt the practice machine.
	DefaultMaxRowBytes = 1 << 20
	// DefaultMaxRowLines bounds the lines one row may span through quoted line breaks.
	DefaultMaxRowLines = 16
)

// bufSize is the read buffer: large reads are markedly faster on big exports.
const bufSize = 1 << 20

// checkEvery is how many rows Each reads between looks at its context.
const checkEvery = 4096

// Errors, for errors.Is. Their text names the file and line, never a value.
var (
	// ErrBadRow is a row that is not valid CSV or has another number of fields than the
	// header: Next returns it for the caller to skip the row and read on.
	ErrBadRow = errors.New("malformed CSV row")
	// ErrEmpty is a file without even a header row.
	ErrEmpty = errors.New("the file is empty; it should start with a header row")
	// ErrRowTooLong is a row longer than Options.MaxRowBytes. Reading stops there: the file
	// is damaged (or a field holds something far larger than any real value), and reading it
	// to the end would take the plugin's memory with it.
	ErrRowTooLong = errors.New("row too long")
	// ErrUnclosedQuote is a quoted field that runs over more than Options.MaxRowLines lines:
	// a quote that was never closed, which would otherwise turn every later row into one
	// malformed row that the caller skips, under any error budget.
	ErrUnclosedQuote = errors.New("quoted field not closed")
)

// MissingColumnError is a header without a required column.
type MissingColumnError struct {
	File, Column string
}

func (e *MissingColumnError) Error() string {
	return fmt.Sprintf("%s has no %s column", e.File, e.Column)
}

// Options configure Open. All are optional.
type Options struct {
	// Required names columns the file must have; Open fails without them. Matched like Col.
	Required []string
	// MaxRowBytes bounds the bytes of one row (DefaultMaxRowBytes when zero). A longer row
	// fails the read with ErrRowTooLong, after reading at most about twice this much.
	MaxRowBytes int
	// MaxRowLines bounds the lines one row may span through quoted line breaks
	// (DefaultMaxRowLines when zero); a longer one fails the read with ErrUnclosedQuote.
	MaxRowLines int
	// TrimSpace removes blanks around every field of every row.
	TrimSpace bool
	// Comma is the field separator (',' when zero).
	Comma rune
}

// File is one CSV file being read. It is not safe for concurrent use.
type File struct {
	name   string // base name, for errors
	f      *os.File
	budget *budgetReader
	r      *csv.Reader
	opts   Options
	header []string
	cols   map[string]int
	line   int // line on which the row last returned started
	next   int // line on which the next row starts (or a blank line before it)
	failed error
}

// budgetReader fails once more than budget bytes are read: File refills it after every row,
// so the bytes read for one row, whatever the CSV reader buffers, stay bounded.
type budgetReader struct {
	r      io.Reader
	budget int64
}

var errBudget = errors.New("row byte budget spent")

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.budget <= 0 {
		return 0, errBudget
	}
	if int64(len(p)) > b.budget {
		p = p[:b.budget]
	}
	n, err := b.r.Read(p)
	b.budget -= int64(n)
	return n, err
}

// Open opens the CSV file at path and reads its header. It fails when the file cannot be
// opened (the error wraps the os error, so errors.Is(err, os.ErrNotExist) tells a missing
// file), is empty (ErrEmpty), has a header that is not CSV, or lacks a required column
// (*MissingColumnError).
func Open(path string, opts Options) (*File, error) {
	if opts.MaxRowBytes <= 0 {
		opts.MaxRowBytes = DefaultMaxRowBytes
	}
	if opts.MaxRowLines <= 0 {
		opts.MaxRowLines = DefaultMaxRowLines
	}
	name := filepath.Base(path)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %w", name, err)
	}
	t := &File{name: name, f: f, opts: opts, next: 1}
	t.budget = &budgetReader{r: f}
	t.refill()
	t.r = csv.NewReader(bufio.NewReaderSize(t.budget, bufSize))
	if opts.Comma != 0 {
		t.r.Comma = opts.Comma
	}
	t.r.FieldsPerRecord = -1 // a short or long row is a bad row to skip, not a fatal error
	t.r.ReuseRecord = true
	head, err := t.r.Read()
	if err != nil {
		f.Close()
		switch {
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("%s: %w", name, ErrEmpty)
		case errors.Is(err, errBudget):
			return nil, fmt.Errorf("%s: the header row is longer than %d bytes: %w; is this the right file?", name, opts.MaxRowBytes, ErrRowTooLong)
		}
		return nil, fmt.Errorf("%s: the header row is not valid CSV (%s)", name, parseReason(err))
	}
	t.header = make([]string, len(head))
	t.cols = make(map[string]int, len(head))
	for i, h := range head {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		t.header[i] = h
		if _, dup := t.cols[strings.ToUpper(h)]; !dup {
			t.cols[strings.ToUpper(h)] = i
		}
	}
	t.advance(head)
	for _, c := range opts.Required {
		if t.Col(c) < 0 {
			f.Close()
			return nil, &MissingColumnError{File: name, Column: c}
		}
	}
	return t, nil
}

// parseReason is a csv error's reason without its position (which the caller gives) or text.
func parseReason(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func (t *File) refill() { t.budget.budget = int64(t.opts.MaxRowBytes) + bufSize }

// advance notes where the row just read ended, so errors can name the line the next starts on.
func (t *File) advance(rec []string) {
	if len(rec) == 0 {
		return
	}
	t.line, _ = t.r.FieldPos(0)
	last, _ := t.r.FieldPos(len(rec) - 1)
	t.next = last + strings.Count(rec[len(rec)-1], "\n") + 1
	t.refill()
}

// Name is the file's base name, as errors give it.
func (t *File) Name() string { return t.name }

// Header is the header row, each name with blanks and a byte-order mark removed.
func (t *File) Header() []string { return t.header }

// Col returns the position of the named column, matched without regard to case or surrounding
// blanks, or -1 when the file has none. When two columns have the name, the first counts.
func (t *File) Col(name string) int {
	if i, ok := t.cols[strings.ToUpper(strings.TrimSpace(name))]; ok {
		return i
	}
	return -1
}

// Line is the line on which the row Next last returned started (the header is line 1), for
// messages such as "events.csv line 1042: start is not a date".
func (t *File) Line() int { return t.line }

// Next returns the next row, with as many fields as the header. It returns io.EOF at the end;
// an error wrapping ErrBadRow for a row to skip (not valid CSV, or another number of fields),
// after which reading goes on; and any other error (ErrRowTooLong, ErrUnclosedQuote, a read
// error) when the rest of the file cannot be read, after which Next returns it again. The
// slice is reused by the next call; its strings are not, but each holds on to its whole row,
// so copy (strings.Clone) a field kept for long.
func (t *File) Next() ([]string, error) {
	if t.failed != nil {
		return nil, t.failed
	}
	start := t.next
	rec, err := t.r.Read()
	if err != nil {
		var pe *csv.ParseError
		switch {
		case errors.Is(err, errBudget):
			t.failed = fmt.Errorf("%s: the row starting on line %d is longer than %d bytes: %w; the file is damaged, or a field holds far more than a value: repair or export it again", t.name, start, t.opts.MaxRowBytes, ErrRowTooLong)
			return nil, t.failed
		case errors.As(err, &pe):
			if pe.Line-pe.StartLine > t.opts.MaxRowLines {
				return nil, t.runaway(pe.StartLine, pe.Line)
			}
			t.line, t.next = pe.StartLine, pe.Line+1
			t.refill()
			return nil, fmt.Errorf("%s line %d: %w (%s)", t.name, pe.StartLine, ErrBadRow, pe.Err)
		case errors.Is(err, io.EOF):
			return nil, io.EOF
		}
		t.failed = fmt.Errorf("read %s: %w", t.name, err)
		return nil, t.failed
	}
	first, _ := t.r.FieldPos(0)
	last, _ := t.r.FieldPos(len(rec) - 1)
	if last-first > t.opts.MaxRowLines {
		return nil, t.runaway(first, last)
	}
	t.advance(rec)
	if len(rec) != len(t.header) {
		return nil, fmt.Errorf("%s line %d: %w (%d fields, the header has %d)", t.name, first, ErrBadRow, len(rec), len(t.header))
	}
	if t.opts.TrimSpace {
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
	}
	return rec, nil
}

// runaway is the error for a quoted field that swallows the lines after it: skipping it as one
// bad row would silently drop every row to the end of the file, so the read fails.
func (t *File) runaway(from, to int) error {
	t.failed = fmt.Errorf("%s: a quoted field opened on line %d is not closed until line %d, so the rows between cannot be read; the export is damaged or cut off: repair or export it again: %w", t.name, from, to, ErrUnclosedQuote)
	return t.failed
}

// Each calls row for every well-formed row and bad for every row to skip, until the end of the
// file (it then returns nil), an error that stops the read, an error from row, or ctx is done.
func (t *File) Each(ctx context.Context, row func(rec []string) error, bad func()) error {
	for n := 0; ; n++ {
		if n%checkEvery == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		rec, err := t.Next()
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, ErrBadRow):
			bad()
		case err != nil:
			return err
		default:
			if err := row(rec); err != nil {
				return err
			}
		}
	}
}

// Close closes the file.
func (t *File) Close() error { return t.f.Close() }

// Field returns rec[i], or "" for a column the file does not have (i < 0, as Col returns).
func Field(rec []string, i int) string {
	if i < 0 || i >= len(rec) {
		return ""
	}
	return rec[i]
}
