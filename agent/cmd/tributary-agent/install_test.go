package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/internal/testenv"
)

// TestServiceInstallVerified installs the service as a practice manager would, into a unit
// folder of the test's own, and has systemd check the unit. CI installs systemd, so there
// a missing systemd-analyze fails the test rather than skipping it.
func TestServiceInstallVerified(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("systemd units are for Linux")
	}
	analyze := systemdAnalyze(t)
	bin := testenv.Binary(t, "./agent/cmd/tributary-agent")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.toml")
	sample := strings.Replace(string(mustRun(t, "config", "sample")), `spool = "/var/lib/tributary/spool"`, `spool = "`+filepath.Join(dir, "spool")+`"`, 1)
	if err := os.WriteFile(cfg, []byte(sample), 0o600); err != nil {
		t.Fatal(err)
	}
	units := filepath.Join(dir, "units")
	os.Mkdir(units, 0o755)
	code, out, errs := runCLI(t, "service", "install", "--config", cfg, "--unit-dir", units, "--binary", bin, "--user", "root")
	if code != 0 || !strings.Contains(out, "wrote "+units) {
		t.Fatalf("service install: %d\n%s%s", code, out, errs)
	}
	unit := filepath.Join(units, "tributary-agent.service")
	text, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecStart=" + bin + " run --config " + cfg, "KillMode=mixed", "Restart=on-failure", "User=root"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("installed unit lacks %q:\n%s", want, text)
		}
	}
	// systemd-analyze exits 0 on warnings, so any output at all is a failure.
	v, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(v))) > 0 {
		t.Fatalf("systemd-analyze verify %s: %v\n%s\n%s", unit, err, v, text)
	}
	if code, _, errs := runCLI(t, "service", "install", "--config", cfg, "--unit-dir", units, "--binary", bin); code == 0 || !strings.Contains(errs, "already exists") {
		t.Fatalf("a second install must refuse to overwrite: %d %s", code, errs)
	}
	if code, out, errs := runCLI(t, "service", "uninstall", "--config", cfg, "--unit-dir", units); code != 0 || !strings.Contains(out, "kept") {
		t.Fatalf("service uninstall: %d %s %s", code, out, errs)
	}
	if _, err := os.Stat(unit); !os.IsNotExist(err) {
		t.Fatalf("uninstall left %s", unit)
	}
}

// TestSystemdAnalyzeCatchesMistakes shows the check above can fail: a misspelt setting is
// reported.
func TestSystemdAnalyzeCatchesMistakes(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("systemd units are for Linux")
	}
	analyze := systemdAnalyze(t)
	unit := filepath.Join(t.TempDir(), "bad.service")
	os.WriteFile(unit, []byte("[Service]\nExecStart=/bin/true\nKilMode=mixed\n"), 0o644)
	v, _ := exec.Command(analyze, "verify", unit).CombinedOutput()
	if !strings.Contains(string(v), "KilMode") {
		t.Fatalf("systemd-analyze did not report a misspelt key: %s", v)
	}
}

func mustRun(t *testing.T, args ...string) []byte {
	t.Helper()
	code, out, errs := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("%v: %s", args, errs)
	}
	return []byte(out)
}

// systemdAnalyze finds systemd-analyze: CI installs it, so there its absence fails the test.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze is not installed; .ci/run installs the systemd package for this test")
		}
		t.Skip("systemd-analyze is not installed (apt-get install systemd)")
	}
	return analyze
}
