package service

import (
	"flag"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/agent/metrics"
	"github.com/tributary-health/tributary/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite deploy/tributary-agent.service from unit.tmpl")

// deployOptions are the paths deploy/README.md installs to.
var deployOptions = Options{Binary: "/usr/local/bin/tributary-agent", Config: "/etc/tributary/agent.toml", User: "tributary"}

// TestDeployUnitIsRendered keeps the unit shipped in deploy/ identical to the one
// 'service install' writes (go test ./agent/service -update rewrites it).
func TestDeployUnitIsRendered(t *testing.T) {
	got, err := Unit(deployOptions)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(testenv.RepoRoot(t), "deploy", "tributary-agent.service")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("deploy/tributary-agent.service differs from the rendered unit; run go test ./agent/service -update\n%s", got)
	}
	for _, line := range []string{"KillMode=mixed", "Restart=on-failure", "ExecStart=/usr/local/bin/tributary-agent run --config /etc/tributary/agent.toml", "User=tributary", "WantedBy=multi-user.target"} {
		if !strings.Contains(string(got), "\n"+line) {
			t.Errorf("unit lacks %q", line)
		}
	}
}

func TestUnitQuotesPaths(t *testing.T) {
	got, err := Unit(Options{Binary: "/opt/Tributary Agent/tributary-agent", Config: "/etc/tributary/agent.toml"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), `ExecStart="/opt/Tributary Agent/tributary-agent" run`) {
		t.Fatalf("a path with a space must be quoted:\n%s", got)
	}
	if strings.Contains(string(got), "User=") {
		t.Fatalf("no user given, so no User= line:\n%s", got)
	}
	if _, err := Unit(Options{Config: "/x"}); err == nil {
		t.Fatal("a unit without a binary must be refused")
	}
}

func TestHealthz(t *testing.T) {
	r := &Runner{Metrics: metrics.New()}
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != "ok" {
		t.Fatalf("/healthz: %d %q", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/metrics", nil))
	if rec.Code != 405 {
		t.Fatalf("POST /metrics: %d, want 405", rec.Code)
	}
}
