package conformance_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/conformance"
	"github.com/tributary-health/tributary/plugins/host"
	"github.com/tributary-health/tributary/plugins/internal/testplugins"
)

var bins map[string]string

func TestMain(m *testing.M) {
	testplugins.TestMain(m, &bins, map[string]string{"template": "github.com/tributary-health/tributary/plugins/template"})
}

func templateConfig(t *testing.T) map[string]string {
	dir, err := filepath.Abs("../template/testdata")
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"dir": dir, "max_skipped_fraction": "0.5"}
}

// line returns the report line for a check with a status, or "".
func line(report, status, check string) string {
	prefix := fmt.Sprintf("%-4s  %-13s ", status, check)
	for _, l := range strings.Split(report, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

func TestCheck(t *testing.T) {
	jan, feb := formats.MonthFor(2024, 1), formats.MonthFor(2024, 2)
	tests := []struct {
		plugin string
		config map[string]string
		pass   bool
		// lines that must appear: status and check name, and text the line (or its fix) holds
		want [][3]string
	}{
		{plugin: "template", pass: true, want: [][3]string{
			{"PASS", "extract", "10 events, 4 registrations"},
			{"PASS", "bad config", "refused"},
			{"PASS", "stdout", ""},
			{"PASS", "close", ""},
			{"INFO", "checksum", "sha256 "},
		}},
		{plugin: "good", pass: true, want: [][3]string{
			{"PASS", "extract", "20 events, 10 registrations"},
			{"PASS", "message size", "largest batch"},
			{"PASS", "old months", "no error"},
		}},
		{plugin: "good", config: map[string]string{"crossing_stays": "discharged"}, pass: true, want: [][3]string{
			{"PASS", "stays", "all 1 stays that began before 2024-02 and were discharged in 2024-02 to 2024-02 were sent"},
			{"PASS", "unknown keys", "unknown key no_such_key_tributary_check"},
			{"PASS", "config", "supplies rows registrations, events; event kinds consultation, admission; admission methods true"},
		}},
		// A plugin that follows the old guide (only stays that start in the months) loses the
		// bed days of stays that began before them.
		{plugin: "good", config: map[string]string{"crossing_stays": "started"}, want: [][3]string{
			{"FAIL", "stays", "1 of 1 stays that began before 2024-02 and were discharged in 2024-02 to 2024-02 were not sent"},
			{"FAIL", "stays", "fix: send every admission discharged in the requested months"},
		}},
		{plugin: "good", config: map[string]string{"admissions": "false"}, pass: true, want: [][3]string{
			{"PASS", "config", "event kinds consultation; admission methods false"},
		}},
		{plugin: "good", config: map[string]string{"print_to_stdout": "yes"}, want: [][3]string{
			{"FAIL", "stdout", "wrote"},
		}},
		{plugin: "good", config: map[string]string{"rows": "none"}, want: [][3]string{
			{"FAIL", "config", "rows must be a whole number"},
		}},
		{plugin: "badrows", want: [][3]string{
			{"FAIL", "extract", "field start has type utf8"},
			{"FAIL", "describe", "generic key max_skipped_fraction"},
			{"WARN", "unknown keys", "no_such_key_tributary_check was accepted"},
		}},
		{plugin: "badrows", config: map[string]string{"mode": "missing"}, want: [][3]string{
			{"FAIL", "extract", "missing field end"},
		}},
		{plugin: "panics", want: [][3]string{
			{"FAIL", "extract", "Extract panicked at panics/main.go"},
		}},
		{plugin: "crashes", want: [][3]string{
			{"FAIL", "extract", "exit status 2"},
		}},
		{plugin: "oldproto", want: [][3]string{
			{"FAIL", "start", "protocol version 0"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.plugin+fmt.Sprint(tt.config), func(t *testing.T) {
			config := tt.config
			if tt.plugin == "template" {
				config = templateConfig(t)
			}
			var out bytes.Buffer
			r, err := conformance.Run(context.Background(), conformance.Options{Path: bins[tt.plugin], Config: config, From: jan, To: feb}, &out)
			if err != nil {
				t.Fatal(err)
			}
			report := out.String()
			t.Log("\n" + report)
			if r.Passed() != tt.pass {
				t.Errorf("passed = %v, want %v", r.Passed(), tt.pass)
			}
			for _, w := range tt.want {
				l := line(report, w[0], w[1])
				if l == "" || !strings.Contains(report[strings.Index(report, l):], w[2]) {
					t.Errorf("no %s %s line saying %q", w[0], w[1], w[2])
				}
			}
			for _, l := range strings.Split(report, "\n") {
				if strings.HasPrefix(l, "FAIL  ") && !strings.Contains(report[strings.Index(report, l)+len(l):], "fix:") {
					t.Errorf("a FAIL line without a fix: %s", l)
				}
			}
			if tt.pass != strings.Contains(report, "\nPASS: the plugin meets the contract") {
				t.Errorf("the closing line disagrees with the result")
			}
			if pids := testplugins.WaitGone(bins[tt.plugin], 3*time.Second); len(pids) > 0 {
				t.Errorf("plugin still running: %v", pids)
			}
		})
	}
}

func TestCheckPinned(t *testing.T) {
	sum, err := host.FileSHA256(bins["good"])
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r, err := conformance.Check(context.Background(), bins["good"], sum, nil, &out)
	if err != nil || !r.Passed() || line(out.String(), "PASS", "checksum") == "" {
		t.Fatalf("pinned check: err %v, passed %v\n%s", err, r.Passed(), out.String())
	}
	out.Reset()
	r, err = conformance.Check(context.Background(), bins["good"], strings.Repeat("0", 64), nil, &out)
	if err != nil || r.Passed() || !strings.Contains(line(out.String(), "FAIL", "checksum"), sum) {
		t.Fatalf("wrong pin: err %v, passed %v\n%s", err, r.Passed(), out.String())
	}
}

func TestMainCLI(t *testing.T) {
	dir := t.TempDir()
	cfg := templateConfig(t)
	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, []byte(fmt.Sprintf("dir = %q\nmax_skipped_fraction = 0.5\n", cfg["dir"])), 0o600); err != nil {
		t.Fatal(err)
	}
	// A relative dir is relative to the configuration file, not to the working directory.
	if err := os.CopyFS(filepath.Join(dir, "export"), os.DirFS(cfg["dir"])); err != nil {
		t.Fatal(err)
	}
	relative := filepath.Join(dir, "relative.toml")
	if err := os.WriteFile(relative, []byte("dir = \"export\"\nmax_skipped_fraction = 0.5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	nested := filepath.Join(dir, "nested.toml")
	if err := os.WriteFile(nested, []byte("[table]\nx = \"y\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"template passes", []string{"check", bins["template"], "--config", good, "--from", "2024-01", "--to", "2024-02"}, 0, "10 events, 4 registrations", ""},
		{"flags first", []string{"--from", "2024-01", "--to", "2024-02", "--config", good, "check", bins["template"]}, 0, "PASS: the plugin meets the contract", ""},
		{"badrows fails", []string{"check", bins["badrows"], "--from", "2024-01", "--to", "2024-02"}, 1, "FAIL: ", ""},
		{"relative dir", []string{"check", bins["template"], "--config", relative, "--from", "2024-01", "--to", "2024-02"}, 0, "10 events, 4 registrations", ""},
		{"after plugin check", []string{bins["template"], "--config", good, "--from", "2024-01", "--to", "2024-02"}, 0, "PASS: the plugin meets the contract", ""},
		{"no path", []string{"check"}, 2, "", "give exactly one plugin path"},
		{"other command", []string{"install", "x"}, 2, "", "the only plugin command is check"},
		{"half a range", []string{"check", bins["good"], "--from", "2024-01"}, 2, "", "both --from and --to"},
		{"bad month", []string{"check", bins["good"], "--from", "2024-13", "--to", "2024-12"}, 2, "", "--from"},
		{"nested config", []string{"check", bins["good"], "--config", nested}, 2, "", "table must be plain values"},
		{"missing config", []string{"check", bins["good"], "--config", filepath.Join(dir, "absent.toml")}, 2, "", "read config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := conformance.Main(tt.args, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stdout.String(), tt.stdout) || !strings.Contains(stderr.String(), tt.stderr) {
				t.Fatalf("code %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout.String(), stderr.String())
			}
		})
	}
}
