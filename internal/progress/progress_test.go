package progress

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/internal/testenv"
)

// TestEnabled: a display only on a terminal, and never with --no-progress, NO_PROGRESS or
// TERM=dumb; a pipe, a file or a buffer get none.
func TestEnabled(t *testing.T) {
	t.Setenv("NO_PROGRESS", "")
	t.Setenv("TERM", "xterm")
	_, tty := testenv.OpenPTY(t)
	if !Enabled(tty, false) {
		t.Error("a terminal: no display")
	}
	if Enabled(tty, true) {
		t.Error("a terminal with --no-progress: a display")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	file, err := os.Create(t.TempDir() + "/out")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	for name, w := range map[string]io.Writer{"a pipe": w, "a file": file, "a buffer": &bytes.Buffer{}} {
		if Enabled(w, false) {
			t.Errorf("%s: a display", name)
		}
	}
	t.Setenv("NO_PROGRESS", "1")
	if Enabled(tty, false) {
		t.Error("NO_PROGRESS=1 at a terminal: a display")
	}
	t.Setenv("NO_PROGRESS", "")
	t.Setenv("TERM", "dumb")
	if Enabled(tty, false) {
		t.Error("TERM=dumb at a terminal: a display")
	}
}

// TestOffWritesNothing: a bar that is off (nil) takes every call and writes nothing; Above
// hands back the writer itself.
func TestOffWritesNothing(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, false, 3, "x")
	if b != nil {
		t.Fatal("New with enabled false made a bar")
	}
	b.Describe("a %d", 1)
	b.Status("b")
	b.AddMax(2)
	b.Add(1)
	r := NewRun(b)
	r.PluginStarted("p", 1, 1)
	r.Batch(10)
	r.PluginDone("p", nil)
	r.Uploading(2)
	r.Uploaded()
	b.Done()
	if w := b.Above(&buf); w != &buf {
		t.Error("Above on no bar wraps the writer")
	}
	if buf.Len() != 0 {
		t.Errorf("an off bar wrote %q", buf.String())
	}
}

// TestRunShowsStepsAndLinesAbove: a Run's bar says which plugin runs and what was uploaded;
// a line written through Above clears the bar's line first and the bar comes back after it;
// Done leaves the line clear.
func TestRunShowsStepsAndLinesAbove(t *testing.T) {
	var term, out bytes.Buffer
	b := New(&term, true, 0, "starting")
	r := NewRun(b)
	r.PluginStarted("synthea", 1, 2)
	r.Batch(1500)
	r.PluginDone("synthea", nil)
	r.PluginStarted("omop", 2, 2)
	log := b.Above(&out)
	before := term.Len()
	if _, err := log.Write([]byte("a log line\n")); err != nil {
		t.Fatal(err)
	}
	if out.String() != "a log line\n" {
		t.Errorf("the line written above is %q", out.String())
	}
	after := term.String()[before:]
	if !strings.HasPrefix(after, "\x1b[2K\r") || !strings.Contains(after, "plugin omop 2/2") {
		t.Errorf("writing above the bar did not clear it and draw it again: %q", after)
	}
	r.PluginDone("omop", errors.New("boom"))
	r.Uploading(3)
	r.Uploaded()
	r.Uploaded()
	r.Uploaded()
	b.Done()
	s := term.String()
	for _, want := range []string{"plugin synthea 1/2: starting", "plugin omop 2/2", "uploading: 0/3 objects", "uploading: 3/3 objects"} {
		if !strings.Contains(s, want) {
			t.Errorf("the bar never said %q:\n%q", want, s)
		}
	}
	if !strings.HasSuffix(s, "\x1b[2K\r") {
		t.Errorf("Done left the bar on the line: ...%q", s[max(0, len(s)-80):])
	}
	n := term.Len()
	b.Describe("after")
	b.Add(1)
	if _, err := log.Write([]byte("later\n")); err != nil {
		t.Fatal(err)
	}
	if term.Len() != n {
		t.Errorf("a bar that is done drew again: %q", term.String()[n:])
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 12345: "12.3k", 4_560_000: "4.56M"} {
		if got := Count(n); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
}
