package main

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/internal/cli"
	"github.com/tributary-health/tributary/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite docs/cli from the command tree")

// TestDemoCommandLine: the built tributary-demo answers -h and --version with exit 0, and
// without --workdir says so with exit 2.
func TestDemoCommandLine(t *testing.T) {
	bin := testenv.Binary(t, "./demo/cmd/tributary-demo")
	run := func(args ...string) (int, string, string) {
		cmd := exec.Command(bin, args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), out.String(), errb.String()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, out.String(), errb.String()
	}
	if code, out, _ := run("-h"); code != 0 || !strings.Contains(out, "--workdir") {
		t.Errorf("-h: exit %d\n%s", code, out)
	}
	if code, out, _ := run("--version"); code != 0 || !strings.Contains(out, "plugin protocol:") {
		t.Errorf("--version: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{nil, {"--generate", "2"}} {
		if code, out, errs := run(args...); code != cli.ExitUsage || out != "" || !strings.Contains(errs, "give the folder for keys, spools and the store with --workdir DIR") {
			t.Errorf("%v: exit %d, %q %q; want exit 2 and a word about --workdir", args, code, out, errs)
		}
	}
	if code, _, errs := run("--workdir", t.TempDir(), "--from", "2024-13"); code != cli.ExitUsage || !strings.Contains(errs, "YYYY-MM") {
		t.Errorf("a bad --from: exit %d, %s", code, errs)
	}
}

// TestCLIReference: docs/cli/tributary-demo.md is what the command tree generates.
func TestCLIReference(t *testing.T) {
	path := filepath.Join(testenv.RepoRoot(t), "docs", "cli", "tributary-demo.md")
	got := cli.Markdown(newRoot())
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("docs/cli/tributary-demo.md does not match the command tree (%v); regenerate it with:\n  %s", err, cli.Regenerate)
	}
}
