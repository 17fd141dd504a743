package csvread_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/plugins/sdk/csvread"
)

func write(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// read returns the rows of a file, each as its fields joined by |, with "BAD@line" for a row
// to skip, and the error that stopped the read.
func read(t *testing.T, f *csvread.File) ([]string, error) {
	t.Helper()
	var out []string
	for {
		rec, err := f.Next()
		switch {
		case errors.Is(err, io.EOF):
			return out, nil
		case errors.Is(err, csvread.ErrBadRow):
			out = append(out, fmt.Sprintf("BAD@%d", f.Line()))
		case err != nil:
			return out, err
		default:
			out = append(out, fmt.Sprintf("%s@%d", strings.Join(rec, "|"), f.Line()))
		}
	}
}

func TestReadsByHeaderName(t *testing.T) {
	body := "\ufeff Id ,Start,EXTRA,end\n" +
		"p1,2024-01-01,x,\n" +
		"p2,\"2024-01-02\",\"a, \"\"quoted\"\"\nfield\",2024-01-05\n" + // a quoted field over two lines
		"p3,2024-01-03\n" + // too few fields
		"p4,2024-01-04,x,\n"
	f, err := csvread.Open(write(t, "events.csv", body), csvread.Options{Required: []string{"id", "START"}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Col("id") != 0 || f.Col(" start ") != 1 || f.Col("End") != 3 || f.Col("absent") != -1 || f.Name() != "events.csv" {
		t.Fatalf("columns: id %d start %d end %d absent %d", f.Col("id"), f.Col("start"), f.Col("end"), f.Col("absent"))
	}
	if h := f.Header(); h[0] != "Id" || h[2] != "EXTRA" {
		t.Fatalf("header %q", h)
	}
	got, err := read(t, f)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"p1|2024-01-01|x|@2", "p2|2024-01-02|a, \"quoted\"\nfield|2024-01-05@3", "BAD@5", "p4|2024-01-04|x|@6"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("rows\n%q\nwant\n%q", got, want)
	}
	if csvread.Field([]string{"a"}, -1) != "" || csvread.Field([]string{"a"}, 3) != "" || csvread.Field([]string{"a"}, 0) != "a" {
		t.Fatal("Field")
	}
}

func TestTrimSpaceAndBadQuotes(t *testing.T) {
	body := "a,b\n x , y \n" + `q"q,1` + "\n" + `"z"z,2` + "\nlast,3\n"
	f, err := csvread.Open(write(t, "t.csv", body), csvread.Options{TrimSpace: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := read(t, f)
	want := []string{"x|y@2", "BAD@3", "BAD@4", "last|3@5"}
	if err != nil || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("rows %q, err %v; want %q", got, err, want)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := csvread.Open(filepath.Join(dir, "absent.csv"), csvread.Options{}); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "absent.csv") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := csvread.Open(write(t, "empty.csv", ""), csvread.Options{}); !errors.Is(err, csvread.ErrEmpty) || !strings.Contains(err.Error(), "empty.csv") {
		t.Errorf("empty file: %v", err)
	}
	var mc *csvread.MissingColumnError
	if _, err := csvread.Open(write(t, "p.csv", "Id,Sex\n"), csvread.Options{Required: []string{"id", "BIRTHDATE"}}); !errors.As(err, &mc) || err.Error() != "p.csv has no BIRTHDATE column" {
		t.Errorf("missing column: %v", err)
	}
	if _, err := csvread.Open(write(t, "h.csv", "a,\"b\n"), csvread.Options{}); err == nil || !strings.Contains(err.Error(), "h.csv: the header row is not valid CSV") {
		t.Errorf("bad header: %v", err)
	}
}

// TestUnclosedQuoteFails: a quote never closed would make every later row part of one bad
// row; the read fails, naming the lines, and keeps failing.
func TestUnclosedQuoteFails(t *testing.T) {
	var b strings.Builder
	b.WriteString("id,note\n")
	for i := 0; i < 40; i++ {
		note := "fine"
		if i == 5 {
			note = `"secret, unclosed`
		}
		fmt.Fprintf(&b, "p%d,%s\n", i, note)
	}
	f, err := csvread.Open(write(t, "notes.csv", b.String()), csvread.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := read(t, f)
	if !errors.Is(err, csvread.ErrUnclosedQuote) || !strings.Contains(err.Error(), "notes.csv: a quoted field opened on line 7") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("err = %v", err)
	}
	if len(got) != 5 {
		t.Errorf("%d rows before the damage, want 5", len(got))
	}
	if _, again := f.Next(); !errors.Is(again, csvread.ErrUnclosedQuote) {
		t.Errorf("after the failure Next returned %v", again)
	}
	// Lines within the limit are a quoted field holding line breaks, which is fine.
	f2, err := csvread.Open(write(t, "ok.csv", "id,note\np1,\"one\ntwo\nthree\"\np2,x\n"), csvread.Options{MaxRowLines: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	if got, err := read(t, f2); err != nil || len(got) != 2 || got[1] != "p2|x@5" {
		t.Fatalf("rows %q, err %v", got, err)
	}
}

// TestGigabyteLineFailsSmall: a 1 GB line (a sparse file, so the test writes almost nothing)
// fails the read naming the file and line, never the value, after reading a few megabytes.
func TestGigabyteLineFailsSmall(t *testing.T) {
	path := filepath.Join(t.TempDir(), "encounters.csv")
	if err := os.WriteFile(path, []byte("id,start,note\np1,2024-01-01,fine\np2,2024-01-02,SECRET-VALUE"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 1<<30); err != nil { // the last line goes on for 1 GB
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f, err := csvread.Open(path, csvread.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := read(t, f)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, csvread.ErrRowTooLong) {
		t.Fatalf("err = %v, want ErrRowTooLong", err)
	}
	t.Log(err)
	if !strings.Contains(err.Error(), "encounters.csv: the row starting on line 3 is longer than 1048576 bytes") || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error %q should name the file and line, and no value", err)
	}
	if len(got) != 1 {
		t.Errorf("rows before the long one: %q", got)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Errorf("reading allocated %d MiB; it should stop after a few", alloc>>20)
	}
}

func TestEachStopsWithTheContext(t *testing.T) {
	f, err := csvread.Open(write(t, "a.csv", "a\n1\n\"x\n2\n"), csvread.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.Each(ctx, func([]string) error { return nil }, func() {}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	f2, err := csvread.Open(write(t, "b.csv", "a,b\n1,2\n3\n4,5\n"), csvread.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	rows, bad := 0, 0
	if err := f2.Each(context.Background(), func([]string) error { rows++; return nil }, func() { bad++ }); err != nil || rows != 2 || bad != 1 {
		t.Fatalf("rows %d, bad %d, err %v", rows, bad, err)
	}
}
