package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/internal/testenv"
)

// TestPluginCheck runs the real command line, tributary-agent plugin check, on the built
// plugin with each example configuration: every check must pass.
func TestPluginCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent and the plugin")
	}
	agent := testenv.Binary(t, "./agent/cmd/tributary-agent")
	plugin := testenv.Binary(t, "./plugins/csv")
	for _, conf := range []string{"emis", "systmone"} {
		t.Run(conf, func(t *testing.T) {
			// The examples hold bad rows on purpose; the check runs with a budget for them.
			path, err := filepath.Abs(filepath.Join("examples", conf, conf+".toml"))
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(agent, "plugin", "check", plugin, "--config", path, "--from", "2024-01", "--to", "2024-03").CombinedOutput()
			text := string(out)
			if err != nil || strings.Contains(text, "FAIL") || !strings.Contains(text, "PASS: the plugin meets the contract") {
				t.Fatalf("plugin check: %v\n%s", err, text)
			}
			t.Logf("%s", text)
		})
	}
}
