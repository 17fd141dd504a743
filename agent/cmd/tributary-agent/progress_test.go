package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/internal/testenv"
)

// barMarks are what a progress bar puts on a line: escape sequences, carriage returns, the
// bar's blocks.
var barMarks = regexp.MustCompile("\x1b|\r|█|\\d+% \\|")

// runIDs differ from run to run.
var runIDs = regexp.MustCompile(`run \d{8}T\d{6}Z-[0-9a-f]+`)

// TestRunOnceProgress: run --once with stderr piped adds nothing to stderr (no escape code,
// no carriage return, no bar); with stderr a terminal it shows the plugin, the batches and
// rows it sent and the objects uploaded, and prints the same summary on stdout; --no-progress
// and NO_PROGRESS=1 turn the bar off at a terminal.
func TestRunOnceProgress(t *testing.T) {
	bin := testenv.Binary(t, "./agent/cmd/tributary-agent")
	good := testenv.Binary(t, "./plugins/internal/testplugins/good")
	months := "from = \"2024-01\"\nto = \"2024-03\""

	_, cfg := practiceDir(t, good, months, "")
	code, piped, errs := runBinary(t, nil, bin, "run", "--once", "--config", cfg)
	if code != 0 {
		t.Fatalf("run --once, piped: exit %d\n%s\n%s", code, piped, errs)
	}
	if m := barMarks.FindString(errs); m != "" {
		t.Errorf("run --once with stderr piped wrote progress (%q) to it:\n%q", m, errs)
	}

	_, cfg = practiceDir(t, good, months, "")
	code, out, screen := testenv.RunWithTerminalStderr(t, []string{"NO_PROGRESS=", "TERM=xterm"}, bin, "run", "--once", "--config", cfg)
	if code != 0 {
		t.Fatalf("run --once at a terminal: exit %d\n%s\n%q", code, out, screen)
	}
	for _, want := range []string{"plugin p 1/1", "rows", "uploading: 0/2 objects", "\x1b[2K\r"} {
		if !strings.Contains(screen, want) {
			t.Errorf("the terminal never showed %q:\n%q", want, screen)
		}
	}
	if runIDs.ReplaceAllString(out, "run ID") != runIDs.ReplaceAllString(piped, "run ID") {
		t.Errorf("the summary at a terminal differs from the piped one:\n%s\npiped:\n%s", out, piped)
	}
	if barMarks.MatchString(out) {
		t.Errorf("the bar reached stdout:\n%q", out)
	}

	for _, c := range []struct {
		env  []string
		args []string
	}{
		{[]string{"NO_PROGRESS=", "TERM=xterm"}, []string{"--no-progress"}},
		{[]string{"NO_PROGRESS=1", "TERM=xterm"}, nil},
		{[]string{"NO_PROGRESS=", "TERM=dumb"}, nil},
	} {
		_, cfg = practiceDir(t, good, months, "")
		code, _, screen := testenv.RunWithTerminalStderr(t, c.env, bin, append([]string{"run", "--once", "--config", cfg}, c.args...)...)
		if code != 0 || strings.Contains(screen, "\x1b") || strings.Contains(screen, "uploading") {
			t.Errorf("%v %v at a terminal: exit %d and progress shown:\n%q", c.env, c.args, code, screen)
		}
	}
}
