package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/internal/testenv"
)

// barMarks are what a progress bar puts on a line: escape sequences, carriage returns, the
// bar's blocks.
var barMarks = regexp.MustCompile("\x1b|\r|█|\\d+% \\|")

// TestConcurrentDemoMatchesSequential runs the built tributary-demo over four practices, one
// of them with a broken patients.csv that fails its plugin, first one agent at a time with its
// output piped, then four at a time with stderr a terminal. Piped, stderr gets nothing; at the
// terminal the bar shows the practices extracted and uploaded and the combine. Both print the
// same lines in practice order, the failed practice's error in its place, and the same
// figures, but for the run ids and the workdir.
func TestConcurrentDemoMatchesSequential(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the demo and runs it three times")
	}
	bin := testenv.Binary(t, "./demo/cmd/tributary-demo")
	plugin := testenv.Binary(t, "./plugins/synthea")
	months := []string{"--from", "2024-01", "--to", "2024-03"}
	gen := t.TempDir()
	if code, out, errs := testenv.Run(t, nil, bin, append([]string{"--workdir", gen, "--plugin", plugin, "--generate", "3", "--patients", "1500"}, months...)...); code != 0 {
		t.Fatalf("generating: exit %d\n%s\n%s", code, out, errs)
	}
	practices := t.TempDir()
	for _, id := range []string{"P001", "P002", "P003"} {
		if err := os.Symlink(filepath.Join(gen, "practices", id), filepath.Join(practices, id)); err != nil {
			t.Fatal(err)
		}
	}
	broken := filepath.Join(practices, "P002X")
	enc, err := os.ReadFile(filepath.Join(gen, "practices", "P001", "encounters.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "encounters.csv"), enc, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "patients.csv"), []byte("nonsense\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	one, four := t.TempDir(), t.TempDir()
	args := func(work, n string) []string {
		return append([]string{"--practices", practices, "--workdir", work, "--plugin", plugin, "--concurrency", n}, months...)
	}
	code, seq, errs := testenv.Run(t, nil, bin, args(one, "1")...)
	if code != 0 {
		t.Fatalf("--concurrency 1: exit %d\n%s\n%s", code, seq, errs)
	}
	if m := barMarks.FindString(errs); m != "" {
		t.Errorf("with stderr piped the demo wrote progress (%q) to it:\n%q", m, errs)
	}
	code, par, screen := testenv.RunWithTerminalStderr(t, []string{"NO_PROGRESS=", "TERM=xterm"}, bin, args(four, "4")...)
	if code != 0 {
		t.Fatalf("--concurrency 4: exit %d\n%s\n%q", code, par, screen)
	}
	for _, want := range []string{"practices 0/4 extracted, 0/4 uploaded", "combining 3 practice(s)", "\x1b[2K\r"} {
		if !strings.Contains(screen, want) {
			t.Errorf("the terminal never showed %q:\n%q", want, screen)
		}
	}
	if barMarks.MatchString(par) {
		t.Errorf("the bar reached stdout:\n%q", par)
	}
	runIDs := regexp.MustCompile(`run \d{8}T\d{6}Z-[0-9a-f]+`)
	norm := func(s, work string) string {
		return runIDs.ReplaceAllString(strings.ReplaceAll(s, work, "WORKDIR"), "run ID")
	}
	if norm(seq, one) != norm(par, four) {
		t.Errorf("four agents at a time print other lines or figures than one at a time:\n%s\none at a time:\n%s", par, seq)
	}
	order := regexp.MustCompile(`(?m)^practice (P\w+)\s*(run|: plugin synthea: .*patients\.csv has no Id column.*; skipped$)`).FindAllStringSubmatch(par, -1)
	var got []string
	for _, m := range order {
		got = append(got, m[1])
	}
	if strings.Join(got, " ") != "P001 P002 P002X P003" {
		t.Errorf("the practices' outcomes are reported in the order %v, want P001 P002 P002X (its error) P003:\n%s", got, par)
	}
	if !strings.Contains(par, "skipped 1 practice(s), for the reasons above: P002X") {
		t.Errorf("the failed practice is not named as skipped:\n%s", par)
	}
}
