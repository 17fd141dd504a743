package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/internal/testenv"
)

// TestPluginCheck runs the real command line, tributary-agent plugin check, on the built
// plugin over the shared OpenSAFELY-shaped dementia set (one practice of it, with consultations
// from clinical_events) and the rules testcase: every check must pass.
func TestPluginCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent and the plugin")
	}
	rules, err := filepath.Abs(filepath.Join("testcases", "rules"))
	if err != nil {
		t.Fatal(err)
	}
	configs := map[string]struct{ body, from, to string }{
		"dementia1000": {fmt.Sprintf("dir = %q\npractice_code = \"1\"\nclinical_events = \"patient_days\"\n", testenv.SharedData(t, setDementia)), "2014-01", "2025-12"},
		// The testcase holds a bad row of each sort on purpose.
		"rules": {fmt.Sprintf("dir = %q\npractice_code = \"A\"\nclinical_events = \"patient_days\"\nmax_skipped_fraction = 1\n", rules), "2024-01", "2024-03"},
	}
	agent := testenv.Binary(t, "./agent/cmd/tributary-agent")
	plugin := testenv.Binary(t, "./plugins/ukgp")
	for name, c := range configs {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ukgp.toml")
			if err := os.WriteFile(path, []byte(c.body+"key_salt = \"check\"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(agent, "plugin", "check", plugin, "--config", path, "--from", c.from, "--to", c.to).CombinedOutput()
			text := string(out)
			if err != nil || strings.Contains(text, "FAIL") || !strings.Contains(text, "PASS: the plugin meets the contract") {
				t.Fatalf("plugin check: %v\n%s", err, text)
			}
			t.Logf("%s", text)
		})
	}
}
