package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/tributary-health/tributary/internal/testenv"
)

func tree(ran *string) *cobra.Command {
	root := NewRoot("tool", "A tool", "Tool does things.")
	g := Group("things", "Things", "")
	g.AddCommand(&cobra.Command{Use: "ok", Short: "Works", Args: NoArgs, RunE: func(*cobra.Command, []string) error {
		*ran = "ok"
		return nil
	}})
	g.AddCommand(&cobra.Command{Use: "fail", Short: "Fails", Args: NoArgs, RunE: func(*cobra.Command, []string) error {
		return errors.New("the thing is broken; fix it")
	}})
	g.AddCommand(&cobra.Command{Use: "attention", Short: "Needs a person", Args: NoArgs, RunE: func(*cobra.Command, []string) error {
		return Exit(ExitAttention)
	}})
	g.AddCommand(&cobra.Command{Use: "usage", Short: "Refuses its flags", Args: NoArgs, RunE: func(*cobra.Command, []string) error {
		return Usagef("give --x")
	}})
	root.AddCommand(g)
	return root
}

func TestExecuteExitCodes(t *testing.T) {
	for _, c := range []struct {
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{nil, ExitUsage, "", "tool: give a command"},
		{[]string{"-h"}, ExitOK, "Exit codes:", ""},
		{[]string{"--version"}, ExitOK, "plugin protocol:", ""},
		{[]string{"things"}, ExitUsage, "", "give a command: attention, fail, ok or usage"},
		{[]string{"things", "nope"}, ExitUsage, "", `unknown command "nope"`},
		{[]string{"things", "-h"}, ExitOK, "Usage:", ""},
		{[]string{"things", "ok"}, ExitOK, "", ""},
		{[]string{"things", "ok", "--nope"}, ExitUsage, "", "tool things ok: unknown flag: --nope\nRun 'tool things ok --help' for usage."},
		{[]string{"things", "ok", "stray"}, ExitUsage, "", `unexpected argument "stray"`},
		{[]string{"things", "fail"}, ExitFailed, "", "tool things fail: the thing is broken; fix it\n"},
		{[]string{"things", "attention"}, ExitAttention, "", ""},
		{[]string{"things", "usage"}, ExitUsage, "", "give --x"},
		{[]string{"nope"}, ExitUsage, "", `unknown command "nope" for "tool"`},
		{[]string{"completion", "bash"}, ExitOK, "bash completion", ""},
	} {
		var ran string
		var out, errb bytes.Buffer
		code := Execute(context.Background(), tree(&ran), c.args, &out, &errb)
		if code != c.code || !strings.Contains(out.String(), c.stdout) || !strings.Contains(errb.String(), c.stderr) {
			t.Errorf("%v: exit %d, stdout %.100q, stderr %q; want %d, %q, %q", c.args, code, out.String(), errb.String(), c.code, c.stdout, c.stderr)
		}
		if c.stderr == "" && errb.Len() > 0 {
			t.Errorf("%v: unexpected stderr %q", c.args, errb.String())
		}
	}
}

// TestRunnableRoot: a root that runs by itself (tributary-demo) runs with no arguments, and
// its own checks decide.
func TestRunnableRoot(t *testing.T) {
	root := NewRoot("demo", "A demo", "Demo runs.")
	root.Args = NoArgs
	root.RunE = func(*cobra.Command, []string) error { return Usagef("give --workdir DIR") }
	var out, errb bytes.Buffer
	if code := Execute(context.Background(), root, nil, &out, &errb); code != ExitUsage || !strings.Contains(errb.String(), "demo: give --workdir DIR") || strings.Contains(errb.String(), "give a command") {
		t.Errorf("a runnable root with no arguments: exit %d, %q", code, errb.String())
	}
}

func TestFence(t *testing.T) {
	got := fence("Prose.\n\nExample:\n  a\n\n  b\n\nMore prose.\n  tail\n")
	want := "Prose.\n\nExample:\n```\n  a\n\n  b\n```\n\nMore prose.\n```\n  tail\n```\n"
	if got != want {
		t.Errorf("fence:\n%s\nwant\n%s", got, want)
	}
}

// TestReadmeExitCodes: the README's table of exit codes is this package's.
func TestReadmeExitCodes(t *testing.T) {
	readme, err := os.ReadFile(testenv.RepoRoot(t) + "/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ExitCodes {
		if row := fmt.Sprintf("| %d | %s |", c.Code, c.Meaning); !bytes.Contains(readme, []byte(row)) {
			t.Errorf("README.md lacks the exit code row %q", row)
		}
	}
}
