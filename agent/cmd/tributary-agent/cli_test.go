package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/tributary-health/tributary/agent/spool"
	"github.com/tributary-health/tributary/internal/cli"
	"github.com/tributary-health/tributary/internal/testenv"
	"github.com/tributary-health/tributary/plugins/host"
)

var update = flag.Bool("update", false, "rewrite docs/cli from the command tree")

// agentBin runs the built tributary-agent and returns its exit code, stdout and stderr.
func agentBin(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runBinary(t, nil, testenv.Binary(t, "./agent/cmd/tributary-agent"), args...)
}

func runBinary(t *testing.T, env []string, bin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), env...)
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String(), errb.String()
	}
	t.Fatalf("%s %v: %v", bin, args, err)
	return 0, "", ""
}

// commandPaths lists every command of the tree as its arguments, root first.
func commandPaths(root *cobra.Command) [][]string {
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var out [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		out = append(out, path)
		for _, sub := range c.Commands() {
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	walk(root, nil)
	return out
}

// TestEveryCommandAnswersHelp: -h and --help print the command's usage on stdout and exit 0,
// for every command and subcommand of the built binary. Before the command tree, 'run -h',
// 'status -h', 'releases -h' and 'config check -h' exited 1 with "flag: help requested",
// 'service -h' demanded --config, and 'keys -h' said the usage was wrong.
func TestEveryCommandAnswersHelp(t *testing.T) {
	paths := commandPaths(newRoot())
	if len(paths) < 15 {
		t.Fatalf("only %d commands in the tree", len(paths))
	}
	for _, p := range paths {
		for _, h := range []string{"-h", "--help"} {
			code, out, errs := agentBin(t, append(p, h)...)
			if code != 0 || !strings.Contains(out, "Usage:") || errs != "" {
				t.Errorf("tributary-agent %s %s: exit %d, stdout %.200q, stderr %q; want exit 0 and the usage on stdout", strings.Join(p, " "), h, code, out, errs)
			}
		}
	}
	if _, out, _ := agentBin(t, "service", "-h"); strings.Contains(out, "required") {
		t.Errorf("service -h still demands a flag:\n%s", out)
	}
}

// TestUsageErrors: a wrong command line exits 2 with the problem and what to do on stderr
// and nothing on stdout. Before, the agent exited 0 with no arguments, and 'config check'
// without --config said "open : no such file or directory".
func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string // in stderr
	}{
		{nil, []string{"give a command", "Usage:", "Available Commands:"}},
		{[]string{"frobnicate"}, []string{`unknown command "frobnicate"`}},
		{[]string{"config", "check"}, []string{"--config FILE", "config sample"}},
		{[]string{"run"}, []string{"--config FILE"}},
		{[]string{"status"}, []string{"--config FILE"}},
		{[]string{"releases"}, []string{"--config FILE"}},
		{[]string{"service", "install"}, []string{"--config FILE"}},
		{[]string{"keys"}, []string{"give a command: init"}},
		{[]string{"keys", "rotate"}, []string{`unknown command "rotate"`}},
		{[]string{"keys", "init"}, []string{"--out DIR"}},
		{[]string{"service"}, []string{"give a command", "install"}},
		{[]string{"plugin"}, []string{"give a command: check"}},
		{[]string{"plugin", "check"}, []string{"one plugin path"}},
		{[]string{"plugin", "check", "x", "--from", "2024-01"}, []string{"both --from and --to"}},
		{[]string{"run", "--frobnicate"}, []string{"unknown flag: --frobnicate", "run --help"}},
		{[]string{"run", "--config", "x", "--log-format", "xml"}, []string{"text or json"}},
		{[]string{"status", "stray"}, []string{`unexpected argument "stray"`}},
	} {
		code, out, errs := agentBin(t, c.args...)
		if code != cli.ExitUsage || out != "" {
			t.Errorf("tributary-agent %v: exit %d, stdout %q; want exit %d and nothing on stdout", c.args, code, out, cli.ExitUsage)
		}
		for _, w := range c.want {
			if !strings.Contains(errs, w) {
				t.Errorf("tributary-agent %v: stderr does not say %q:\n%s", c.args, w, errs)
			}
		}
		if strings.Contains(errs, "open :") || strings.Contains(errs, "flag: help requested") {
			t.Errorf("tributary-agent %v: %s", c.args, errs)
		}
	}
	// A failure that is not the command line's exits 1.
	if code, _, errs := agentBin(t, "config", "check", "--config", filepath.Join(t.TempDir(), "missing.toml")); code != cli.ExitFailed || !strings.Contains(errs, "missing.toml") {
		t.Errorf("config check of a missing file: exit %d, %s", code, errs)
	}
}

// TestVersionAndCompletion: --version names the version, the commit, Go and the contract
// versions; completion scripts come from the tree.
func TestVersionAndCompletion(t *testing.T) {
	code, out, errs := agentBin(t, "--version")
	for _, w := range []string{"tributary-agent ", "commit:", "go:              go1.", "format version:  2 (registry 1)", "plugin protocol: 1"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("--version: exit %d, %q %q; want it to say %q", code, out, errs, w)
		}
	}
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		if code, out, errs := agentBin(t, "completion", shell); code != 0 || !strings.Contains(out, "tributary-agent") {
			t.Errorf("completion %s: exit %d, %.100q %s", shell, code, out, errs)
		}
	}
}

// TestPluginCheckRuns: 'plugin check PATH' checks the plugin. Before, it always answered
// "the only plugin command is check".
func TestPluginCheckRuns(t *testing.T) {
	good := testenv.Binary(t, "./plugins/internal/testplugins/good")
	sum, err := host.FileSHA256(good)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "good.toml")
	os.WriteFile(cfg, []byte("rows = \"40\"\n"), 0o600)
	code, out, errs := agentBin(t, "plugin", "check", good, "--config", cfg, "--from", "2024-01", "--to", "2024-03", "--sha256", sum)
	if code != 0 || strings.Contains(errs, "only plugin command") || !strings.Contains(out, "PASS") {
		t.Fatalf("plugin check of a good plugin: exit %d\n%s\n%s", code, out, errs)
	}
	// A plugin that breaks the contract fails the check with exit 1 and the report on stdout.
	bad := testenv.Binary(t, "./plugins/internal/testplugins/badrows")
	badCfg := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(badCfg, []byte("mode = \"value\"\n"), 0o600)
	if code, out, errs := agentBin(t, "plugin", "check", bad, "--config", badCfg, "--from", "2024-01", "--to", "2024-01"); code != cli.ExitFailed || !strings.Contains(out, "FAIL") || !strings.Contains(errs, "does not meet the plugin contract") {
		t.Errorf("plugin check of a bad plugin: exit %d\n%s\n%s", code, out, errs)
	}
}

// TestRunOnceCountsWhatWasSent: the summary of run --once counts exactly the objects it put,
// including a run left waiting by an earlier attempt: the release log (one line per put)
// grows by as many objects as the summary says.
func TestRunOnceCountsWhatWasSent(t *testing.T) {
	dir := t.TempDir()
	if code, _, errs := agentBin(t, "keys", "init", "--out", filepath.Join(dir, "keys")); code != 0 {
		t.Fatal(errs)
	}
	good := testenv.Binary(t, "./plugins/internal/testplugins/good")
	sum, err := host.FileSHA256(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(store, extra string) string {
		cfg := fmt.Sprintf("practice = \"P1\"\nkey_file = %q\nstore = %q\nspool = %q\nlisten = \"off\"\n%s\n[months]\nfrom = \"2024-01\"\nto = \"2024-02\"\n[[plugins]]\nname = \"good\"\npath = %q\nsha256 = %q\n",
			filepath.Join(dir, "keys", "practice.key"), store, filepath.Join(dir, "spool"), extra, good, sum)
		p := filepath.Join(dir, "agent.toml")
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	releases := func(cfg string) int {
		_, out, _ := agentBin(t, "releases", "--config", cfg)
		return strings.Count(out, "practices/P1/runs/")
	}
	summary := regexp.MustCompile(`uploaded: (\d+) run\(s\), (\d+) object\(s\), \d+ bytes; (\d+) run\(s\) waiting`)
	counts := func(out string) (runs, objects, waiting int) {
		m := summary.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no upload summary in:\n%s", out)
		}
		runs, _ = strconv.Atoi(m[1])
		objects, _ = strconv.Atoi(m[2])
		waiting, _ = strconv.Atoi(m[3])
		return
	}
	// The store refuses the connection: the run waits in the spool.
	down := write("s3://bucket?endpoint=127.0.0.1:1&insecure=true", "[s3]\naccess_key = \"x\"\nsecret_key = \"y\"")
	code, out, errs := agentBin(t, "run", "--once", "--config", down)
	if r, o, w := counts(out); code != cli.ExitFailed || r != 0 || o != 0 || w != 1 || !strings.Contains(errs, "sent by the next run") {
		t.Fatalf("run --once with the store down: exit %d, %d runs %d objects %d waiting\n%s\n%s", code, r, o, w, out, errs)
	}
	// Next run: both runs go, two objects each.
	up := write("file://"+filepath.ToSlash(filepath.Join(dir, "store")), "")
	code, out, errs = agentBin(t, "run", "--once", "--config", up)
	r, o, w := counts(out)
	if code != 0 || r != 2 || o != 4 || w != 0 {
		t.Fatalf("run --once after the store came back: exit %d, %d runs %d objects %d waiting; want 2, 4, 0\n%s\n%s", code, r, o, w, out, errs)
	}
	if n := releases(up); n != o {
		t.Errorf("the summary says %d objects, the release log lists %d", o, n)
	}
	code, out, _ = agentBin(t, "run", "--once", "--config", up)
	if r, o, _ := counts(out); code != 0 || r != 1 || o != 2 || releases(up) != 6 {
		t.Errorf("a third run: exit %d, %d runs %d objects; the release log lists %d\n%s", code, r, o, releases(up), out)
	}
}

// practiceDir makes a practice's folder with keys and a configuration of the given plugin
// and plugin settings over a directory store, and returns the configuration's path.
func practiceDir(t *testing.T, plugin, months, pluginConfig string) (dir, cfg string) {
	t.Helper()
	dir = t.TempDir()
	if code, _, errs := agentBin(t, "keys", "init", "--out", filepath.Join(dir, "keys")); code != 0 {
		t.Fatal(errs)
	}
	sum, err := host.FileSHA256(plugin)
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf("practice = \"P1\"\nkey_file = %q\nstore = %q\nspool = %q\nlisten = \"off\"\n[months]\n%s\n[[plugins]]\nname = \"p\"\npath = %q\nsha256 = %q\n  [plugins.config]\n%s\n",
		filepath.Join(dir, "keys", "practice.key"), "file://"+filepath.ToSlash(filepath.Join(dir, "store")), filepath.Join(dir, "spool"), months, plugin, sum, pluginConfig)
	cfg = filepath.Join(dir, "agent.toml")
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, cfg
}

// TestKeysInitPrintsKeyID: keys init prints the key id the lead's registry add prints.
func TestKeysInitPrintsKeyID(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := agentBin(t, "keys", "init", "--out", dir)
	if code != 0 {
		t.Fatal(errs)
	}
	id, err := keyID(filepath.Join(dir, "practice.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "key id:      "+id) {
		t.Errorf("keys init does not print key id %s:\n%s", id, out)
	}
}

// TestRunOnceListsSkippedRows: the summary of run --once lists, per plugin, the source rows it
// skipped and why (the README promises what was not counted and why).
func TestRunOnceListsSkippedRows(t *testing.T) {
	synthea := testenv.Binary(t, "./plugins/synthea")
	cases := filepath.Join(testenv.RepoRoot(t), "plugins", "synthea", "testcases", "bad_rows")
	_, cfg := practiceDir(t, synthea, "from = \"2021-01\"\nto = \"2021-12\"", fmt.Sprintf("  dir = %q\n  max_skipped_fraction = \"1\"", cases))
	code, out, errs := agentBin(t, "run", "--once", "--config", cfg)
	if code != 0 {
		t.Fatalf("run --once: exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{
		"skipped by the plugin: 1 source row(s): encounters.csv: PATIENT is not in patients.csv",
		"skipped by the plugin: 2 source row(s): encounters.csv: unknown ENCOUNTERCLASS",
		"skipped by the plugin: 1 source row(s): patients.csv: Id is empty",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the summary does not say %q:\n%s", want, out)
		}
	}
}

// TestStatusAfterOneOffRun: a clean run --once leaves nothing for a person to do (exit 0),
// and status names it as last sent.
func TestStatusAfterOneOffRun(t *testing.T) {
	_, cfg := practiceDir(t, testenv.Binary(t, "./plugins/internal/testplugins/good"), "from = \"2024-01\"\nto = \"2024-02\"", "")
	code, out, errs := agentBin(t, "run", "--once", "--config", cfg)
	if code != 0 {
		t.Fatalf("run --once: exit %d\n%s\n%s", code, out, errs)
	}
	run := strings.Fields(out)[1]
	code, out, errs = agentBin(t, "status", "--config", cfg)
	if code != 0 || !strings.Contains(out, "Nothing to do") || !strings.Contains(out, "(run "+strings.TrimSuffix(run, ":")+")") || !strings.Contains(out, "only one-off runs") {
		t.Errorf("status after a clean one-off run: exit %d (want 0)\n%s%s", code, out, errs)
	}
}

// TestReleasesNameTheStore: releases prints each store as a bucket on a server, or a folder,
// above the keys of what went there, not as s3://bucket?endpoint=...&insecure=true/practices/...
func TestReleasesNameTheStore(t *testing.T) {
	_, cfg := practiceDir(t, testenv.Binary(t, "./plugins/internal/testplugins/good"), "from = \"2024-01\"\nto = \"2024-01\"", "")
	spoolDir := filepath.Join(filepath.Dir(cfg), "spool")
	if code, _, errs := agentBin(t, "run", "--once", "--config", cfg); code != 0 {
		t.Fatal(errs)
	}
	sp := spool.View(spoolDir)
	for _, key := range []string{"practices/P1/runs/20240301T000000Z-00000001/figures.arrow", "practices/P1/runs/20240301T000000Z-00000001/manifest.json"} {
		if err := sp.LogRelease(spool.Release{Time: time.Now().UTC(), RunID: "20240301T000000Z-00000001", Key: key, Size: 10,
			Store: "s3://fed?endpoint=minio.example.org%3A9000&insecure=true"}); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errs := agentBin(t, "releases", "--config", cfg)
	if code != 0 {
		t.Fatal(errs)
	}
	for _, want := range []string{"Store: folder " + filepath.Join(filepath.Dir(cfg), "store"), "Store: bucket fed on minio.example.org:9000 (plain HTTP)", "  practices/P1/runs/20240301T000000Z-00000001/manifest.json"} {
		if !strings.Contains(out, want) {
			t.Errorf("releases does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s3://") || strings.Contains(out, "endpoint=") || strings.Contains(out, "file://") {
		t.Errorf("releases prints store URLs:\n%s", out)
	}
}

// TestCLIReference: docs/cli/tributary-agent.md is what the command tree generates.
func TestCLIReference(t *testing.T) {
	checkReference(t, newRoot(), "tributary-agent.md")
}

func checkReference(t *testing.T, root *cobra.Command, name string) {
	t.Helper()
	path := filepath.Join(testenv.RepoRoot(t), "docs", "cli", name)
	got := cli.Markdown(root)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("docs/cli/%s does not match the command tree (%v); regenerate it with:\n  %s", name, err, cli.Regenerate)
	}
}
