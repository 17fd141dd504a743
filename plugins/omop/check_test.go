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
// reading the shared Synthea27Nj set as CSV files and, with PostgreSQL, from the database
// through the read-only role: every check must pass.
func TestPluginCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent and the plugin")
	}
	configs := map[string]string{"csv": fmt.Sprintf("dir = %q\n", testenv.SharedData(t, setNJ))}
	if os.Getenv("TRIBUTARY_TEST_PG_URL") != "" || os.Getenv("CI") == "true" {
		f := cdm(t)
		configs["postgresql"] = fmt.Sprintf("database_url = %q\nschema = \"variant\"\n", f.readOnly)
	}
	agent := testenv.Binary(t, "./agent/cmd/tributary-agent")
	plugin := testenv.Binary(t, "./plugins/omop")
	for name, body := range configs {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "omop.toml")
			if err := os.WriteFile(path, []byte(body+"key_salt = \"check\"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(agent, "plugin", "check", plugin, "--config", path, "--from", "2015-01", "--to", "2016-12").CombinedOutput()
			text := string(out)
			if err != nil || strings.Contains(text, "FAIL") || !strings.Contains(text, "PASS: the plugin meets the contract") {
				t.Fatalf("plugin check: %v\n%s", err, text)
			}
			t.Logf("%s", text)
		})
	}
}
