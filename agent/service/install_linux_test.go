package service

import (
	"os"
	"strings"
	"testing"
)

// TestInstallWithoutSystemd: on a machine not booted with systemd (this container, CI)
// install says so and writes nothing into systemd's folder.
func TestInstallWithoutSystemd(t *testing.T) {
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("this machine runs systemd; installing for real is not a test's business")
	}
	before, _ := os.ReadDir("/etc/systemd/system")
	_, err := Install(Options{Binary: "/usr/local/bin/tributary-agent", Config: "/etc/tributary/agent.toml"})
	if err == nil || !strings.Contains(err.Error(), "systemd is not running on this machine") {
		t.Fatalf("install without systemd: %v", err)
	}
	if _, err := os.Stat(UnitPath(Options{})); err == nil {
		t.Fatalf("install without systemd left %s", UnitPath(Options{}))
	}
	after, _ := os.ReadDir("/etc/systemd/system")
	if len(after) != len(before) {
		t.Fatal("install without systemd changed /etc/systemd/system")
	}
	if _, err := State(Options{}); err == nil || !strings.Contains(err.Error(), "systemd is not running") {
		t.Fatalf("status without systemd: %v", err)
	}
}
