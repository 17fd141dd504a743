package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/agent/config"
	"github.com/tributary-health/tributary/internal/testenv"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestConfigSampleIsValid(t *testing.T) {
	code, out, _ := runCLI(t, "config", "sample")
	if code != 0 {
		t.Fatal("config sample failed")
	}
	if _, err := config.Parse([]byte(out)); err != nil {
		t.Fatalf("the printed sample does not parse: %v", err)
	}
}

// TestRunOnce drives the CLI as a practice manager would: keys init, a config naming the
// real Synthea plugin over shared data, run --once, releases; then a tampered plugin pin.
func TestRunOnce(t *testing.T) {
	plugin := testenv.Binary(t, "./plugins/synthea")
	data := testenv.SharedData(t, "synthea_csv_unmc_ne111/csv")
	dir := t.TempDir()
	if code, out, errs := runCLI(t, "keys", "init", "--out", filepath.Join(dir, "keys")); code != 0 || !strings.Contains(out, "practice.pub") {
		t.Fatalf("keys init: %d %s %s", code, out, errs)
	}
	if code, _, errs := runCLI(t, "keys", "init", "--out", filepath.Join(dir, "keys")); code == 0 || !strings.Contains(errs, "already exists") {
		t.Fatalf("keys init must refuse to overwrite a key: %d %s", code, errs)
	}
	b, err := os.ReadFile(plugin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	cfg := fmt.Sprintf(`practice = "P1"
key_file = "keys/practice.key"
store = "file://%s/store"
spool = "spool"
[months]
from = "2021-01"
to = "2021-03"
[[plugins]]
name = "synthea"
path = %q
sha256 = "%s"
  [plugins.config]
  dir = %q
`, filepath.ToSlash(dir), plugin, hex.EncodeToString(sum[:]), data)
	cfgPath := filepath.Join(dir, "agent.toml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	code, out, errs := runCLI(t, "run", "--once", "--config", cfgPath)
	// One submission and its manifest: two objects, and the summary must say two.
	if code != 0 || !strings.Contains(out, "1 file(s) (4 periods") || !strings.Contains(out, "1 run(s), 2 object(s)") || !strings.Contains(out, "0 run(s) waiting") {
		t.Fatalf("run --once: %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = runCLI(t, "releases", "--config", cfgPath)
	if code != 0 || strings.Count(out, "practices/P1/runs/") != 2 || !strings.Contains(out, "2021-01..2021-03") {
		t.Fatalf("releases must list the submission (months 2021-01..2021-03) and the manifest:\n%s", out)
	}
	// A plugin whose checksum differs from the pin is refused, and the command fails.
	bad := strings.Replace(cfg, hex.EncodeToString(sum[:]), strings.Repeat("0", 64), 1)
	os.WriteFile(cfgPath, []byte(bad), 0o600)
	code, out, errs = runCLI(t, "run", "--once", "--config", cfgPath)
	if code == 0 || !strings.Contains(out, "does not match its pinned SHA-256") || !strings.Contains(errs, "nothing was released") {
		t.Fatalf("a wrong pin must fail the run with a clear message: %d\n%s\n%s", code, out, errs)
	}
}
