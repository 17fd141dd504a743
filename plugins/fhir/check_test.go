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

// TestPluginCheck runs the real command line, tributary-agent plugin check, on the built plugin
// reading the shared bulk NDJSON export and the shared Bundles: every check must pass.
func TestPluginCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent and the plugin")
	}
	// Months with admissions, some of them stays from one month into the next.
	configs := map[string]struct{ dir, from, to string }{
		"ndjson":  {testenv.SharedData(t, "synthea_fhir_bulk_ndjson_ks13"), "1984-01", "1990-12"},
		"bundles": {testenv.SharedData(t, "synthea_csv_mcode_ma115/fhir_r4_bundles"), "2000-01", "2020-12"},
	}
	agent := testenv.Binary(t, "./agent/cmd/tributary-agent")
	plugin := testenv.Binary(t, "./plugins/fhir")
	for name, c := range configs {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fhir.toml")
			if err := os.WriteFile(path, []byte(fmt.Sprintf("dir = %q\nkey_salt = \"check\"\n", c.dir)), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(agent, "plugin", "check", plugin, "--config", path, "--from", c.from, "--to", c.to).CombinedOutput()
			text := string(out)
			if err != nil || strings.Contains(text, "FAIL") || strings.Contains(text, "WARN") || !strings.Contains(text, "PASS: the plugin meets the contract") {
				t.Fatalf("plugin check: %v\n%s", err, text)
			}
			t.Logf("%s", text)
		})
	}
}
