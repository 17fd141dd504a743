package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/csv"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/coordinator/provision"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/cli"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite docs/cli from the command tree")

// coordBin runs the built tributary-coordinator with extra environment variables.
func coordBin(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(testenv.Binary(t, "./coordinator/cmd/tributary-coordinator"), args...)
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
	t.Fatalf("tributary-coordinator %v: %v", args, err)
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

// TestEveryCommandAnswersHelp: every command of the built binary prints its usage on stdout
// for -h and --help and exits 0. Before the command tree, 'registry -h', 'tokens -h' and
// 'keys -h' said "unknown subcommand".
func TestEveryCommandAnswersHelp(t *testing.T) {
	paths := commandPaths(newRoot())
	if len(paths) < 20 {
		t.Fatalf("only %d commands in the tree", len(paths))
	}
	for _, p := range paths {
		for _, h := range []string{"-h", "--help"} {
			code, out, errs := coordBin(t, nil, append(p, h)...)
			if code != 0 || !strings.Contains(out, "Usage:") || errs != "" || strings.Contains(out, "unknown subcommand") {
				t.Errorf("tributary-coordinator %s %s: exit %d, stdout %.200q, stderr %q; want exit 0 and the usage on stdout", strings.Join(p, " "), h, code, out, errs)
			}
		}
	}
}

// TestUsageErrorsOfTheBinary: a wrong command line exits 2, says what is wrong on stderr and
// prints nothing on stdout; a failure when acting exits 1.
func TestUsageErrorsOfTheBinary(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Available Commands:"},
		{[]string{"registry"}, 2, "give a command: add, list or revoke"},
		{[]string{"tokens", "rename"}, 2, `unknown command "rename"`},
		{[]string{"keys", "init"}, 2, "--out DIR"},
		{[]string{"query", "--frobnicate"}, 2, "unknown flag: --frobnicate"},
		{[]string{"query", "--store", "x", "--from", "2024-13"}, 2, "write it as YYYY-MM"},
		{[]string{"combine", "stray"}, 2, `unexpected argument "stray"`},
		{[]string{"combine", "--store", "x", "--policy", "uk-round-10"}, 2, "choose uk-suppress-1-7-round-5 (the default) or uk-midpoint-6"},
		{[]string{"holder", "figures", "--policy", "none"}, 2, "unknown disclosure policy"},
		{[]string{"provenance", "--store", "x", "--measure", "admissions"}, 2, "give --measure and --month"},
		{[]string{"query", "--store", filepath.Join(t.TempDir(), "empty")}, 1, "query:"},
	} {
		code, out, errs := coordBin(t, []string{"TRIBUTARY_STORE="}, c.args...)
		if code != c.code || !strings.Contains(errs, c.want) || (code == 2 && out != "") {
			t.Errorf("tributary-coordinator %v: exit %d, stdout %q, stderr %q; want exit %d and %q on stderr", c.args, code, out, errs, c.code, c.want)
		}
	}
}

// TestStoreFromEnvironment: --store defaults to $TRIBUTARY_STORE, read when the command runs
// (so the CLI reference does not depend on the environment it was generated in).
func TestStoreFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	code, _, errs := coordBin(t, []string{"TRIBUTARY_STORE=file://" + filepath.ToSlash(dir)}, "query")
	if code != 1 || !strings.Contains(errs, "combine") {
		t.Errorf("query with the store from the environment, before any combine: exit %d, %s", code, errs)
	}
	if code, _, errs := coordBin(t, []string{"TRIBUTARY_STORE="}, "query"); code != 2 || !strings.Contains(errs, "TRIBUTARY_STORE") {
		t.Errorf("query with no store at all: exit %d, %s", code, errs)
	}
}

// TestVersionAndCompletionOfTheBinary: --version and shell completion, from the built binary.
func TestVersionAndCompletionOfTheBinary(t *testing.T) {
	code, out, _ := coordBin(t, nil, "--version")
	for _, w := range []string{"tributary-coordinator ", "commit:", "go:", "format version:  2", "plugin protocol: 1"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("--version: exit %d, %q; want it to say %q", code, out, w)
		}
	}
	if code, out, _ := coordBin(t, nil, "completion", "bash"); code != 0 || !strings.Contains(out, "tributary-coordinator") {
		t.Errorf("completion bash: exit %d, %.100q", code, out)
	}
}

// TestRegisteredPatientsHasNoRate: the denominator gets no rate per 1,000 in any output of
// query (it was 1,307 per 1,000: list size per 1,000 list size), while a measure over it does.
func TestRegisteredPatientsHasNoRate(t *testing.T) {
	dir := t.TempDir()
	st, err := objstore.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fed := fedgen.New(fedgen.Params{Practices: 2, Months: 2, Seed: 5, Start: formats.MonthFor(2025, time.January)})
	if err := fed.Write(context.Background(), st, 2); err != nil {
		t.Fatal(err)
	}
	pem, err := formats.MarshalPublicKey(fed.Coordinator.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(t.TempDir(), "coordinator.pub")
	if err := os.WriteFile(pubFile, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	store := "file://" + filepath.ToSlash(dir)
	if code, _, errs := coordBin(t, nil, "combine", "--store", store, "--coordinator-pub", pubFile); code != 0 {
		t.Fatalf("combine: %d %s", code, errs)
	}
	code, out, errs := coordBin(t, nil, "query", "--store", store, "--measure", "registered_patients,admissions", "--format", "csv")
	if code != 0 {
		t.Fatalf("query: %d %s", code, errs)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) < 3 {
		t.Fatalf("query csv: %v\n%s", err, out)
	}
	col := slices.Index(rows[0], "rate_per_1000")
	for _, r := range rows[1:] {
		switch r[1] {
		case formats.RegisteredPatients:
			if r[col] != "" {
				t.Errorf("registered_patients has a rate per 1,000: %v", r)
			}
		case formats.Admissions:
			if r[col] == "" {
				t.Errorf("admissions has no rate per 1,000: %v", r)
			}
		}
	}
	_, table, _ := coordBin(t, nil, "query", "--store", store, "--measure", "registered_patients")
	for _, line := range strings.Split(table, "\n")[1:] {
		if f := strings.Fields(line); len(f) > 9 && f[1] == formats.RegisteredPatients && f[9] != "-" {
			t.Errorf("the table shows a rate for registered_patients: %s", line)
		}
	}
}

// TestCoordinatorLinksNoAgent: the coordinator's binary links none of the agent, its spool or
// the plugin host (the demo, which needs them, is tributary-demo). agent/disclosure alone is
// allowed: 'holder run' applies the federation's disclosure policy, and its audit, to the
// securely aggregated federation cells exactly as an agent does to its practice's.
func TestCoordinatorLinksNoAgent(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./coordinator/cmd/tributary-coordinator")
	cmd.Dir = testenv.RepoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const mod = "github.com/tributary-health/tributary/"
	var bad []string
	for _, p := range strings.Fields(string(out)) {
		rel, ok := strings.CutPrefix(p, mod)
		if !ok {
			continue
		}
		if rel == "agent/disclosure" {
			continue
		}
		if rel == "agent" || strings.HasPrefix(rel, "agent/") || rel == "plugins/host" || strings.HasPrefix(rel, "plugins/host/") ||
			rel == "plugins/sdk" || rel == "plugins/conformance" || rel == "demo" || strings.HasPrefix(rel, "demo/") {
			bad = append(bad, p)
		}
	}
	if len(bad) > 0 {
		t.Fatalf("tributary-coordinator links packages it never runs:\n  %s", strings.Join(bad, "\n  "))
	}
	if !strings.Contains(string(out), mod+"coordinator/combine") {
		t.Fatalf("go list -deps does not list coordinator/combine; is the package list right?\n%s", out)
	}
}

// TestCLIReference: docs/cli/tributary-coordinator.md is what the command tree generates.
func TestCLIReference(t *testing.T) {
	path := filepath.Join(testenv.RepoRoot(t), "docs", "cli", "tributary-coordinator.md")
	got := cli.Markdown(newRoot())
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("docs/cli/tributary-coordinator.md does not match the command tree (%v); regenerate it with:\n  %s", err, cli.Regenerate)
	}
}

// TestTokensCheckTheRegistry: a practice token for a practice the registry does not name is
// refused when the registry can be read, and made with a warning when it cannot.
func TestTokensCheckTheRegistry(t *testing.T) {
	dir := t.TempDir()
	st, err := objstore.NewDir(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	fed := fedgen.New(fedgen.Params{Practices: 1, Months: 1, Seed: 9, Start: formats.MonthFor(2025, time.January)})
	if err := fed.Write(context.Background(), st, 1); err != nil {
		t.Fatal(err)
	}
	pem, err := formats.MarshalPublicKey(fed.Coordinator.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(dir, "coordinator.pub")
	os.WriteFile(pubFile, pem, 0o644)
	file := filepath.Join(dir, "tokens.json")
	add := []string{"tokens", "add", "--file", file, "--name", "Riverside", "--role", "practice", "--coordinator-pub", pubFile}
	env := []string{"TRIBUTARY_STORE=file://" + filepath.ToSlash(filepath.Join(dir, "store"))}
	if code, out, errs := coordBin(t, env, append(add, "--practice", "ZZZ999")...); code != 1 || out != "" || !strings.Contains(errs, "ZZZ999 is not in the federation's registry") {
		t.Errorf("tokens add for an unregistered practice: exit %d, %q, %s", code, out, errs)
	}
	if code, out, errs := coordBin(t, env, append(add, "--practice", fed.Practices[0].ID)...); code != 0 || !strings.HasPrefix(out, "trib_") || strings.Contains(errs, "could not check") {
		t.Errorf("tokens add for a registered practice: exit %d, %q, %s", code, out, errs)
	}
	// No store to read: the token is made, and the command says it could not check.
	if code, out, errs := coordBin(t, []string{"TRIBUTARY_STORE="}, append(add, "--practice", "ZZZ999")...); code != 0 || !strings.HasPrefix(out, "trib_") || !strings.Contains(errs, "could not check") {
		t.Errorf("tokens add with no registry to read: exit %d, %q, %s", code, out, errs)
	}
}

// TestKeysFileServesSystemdAndShell: the keys file provision writes gives both variables to
// systemd's EnvironmentFile= (whose parser skips a line without '=' and would refuse a key
// such as "export TRIBUTARY_S3_ACCESS_KEY") and, sourced with '. FILE', to a shell's
// children, which the agent run by hand is.
func TestKeysFileServesSystemdAndShell(t *testing.T) {
	text := envFile("practice A81001", "practice provision", provision.Credentials{AccessKey: "TRIBAK", SecretKey: "s3cr3t"})
	name := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	systemd := map[string]string{}
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue // systemd skips it
		}
		if !name.MatchString(k) {
			t.Errorf("systemd would ignore %q: %q is not a variable name", line, k)
		}
		systemd[k] = v
	}
	if systemd["TRIBUTARY_S3_ACCESS_KEY"] != "TRIBAK" || systemd["TRIBUTARY_S3_SECRET_KEY"] != "s3cr3t" || len(systemd) != 2 {
		t.Errorf("systemd reads %v", systemd)
	}
	file := filepath.Join(t.TempDir(), "store.env")
	os.WriteFile(file, []byte(text), 0o600)
	out, err := exec.Command("/bin/sh", "-c", `. "$0" && env`, file).Output()
	if err != nil {
		t.Skipf("no POSIX shell: %v", err)
	}
	for _, kv := range []string{"TRIBUTARY_S3_ACCESS_KEY=TRIBAK", "TRIBUTARY_S3_SECRET_KEY=s3cr3t"} {
		if !strings.Contains(string(out), kv+"\n") {
			t.Errorf("sourcing the file does not export %s", kv)
		}
	}
}
