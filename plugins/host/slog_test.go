package host_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/hashicorp/go-hclog"

	"github.com/tributary-health/tributary/internal/testenv"
	"github.com/tributary-health/tributary/plugins/host"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// records parses the JSON lines a slog.JSONHandler wrote.
func records(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		recs = append(recs, r)
	}
	return recs
}

func find(recs []map[string]any, msg string) map[string]any {
	for _, r := range recs {
		if r["msg"] == msg {
			return r
		}
	}
	return nil
}

// TestPluginLogsKeepLevelAndFields runs a real plugin with the slog bridge: its lines arrive
// as records at their own level, with their fields as attributes, not as INFO lines holding
// hclog's rendered text.
func TestPluginLogsKeepLevelAndFields(t *testing.T) {
	out := &testenv.LogBuffer{}
	log := slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo})).With("plugin", "good")
	p, err := launch(t, "good", host.Options{Logger: host.SlogLogger(log)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Extract(context.Background(), sdk.Request{From: jan, To: jan, Config: map[string]string{"rows": "7"}},
		func(string, arrow.Record) error { return nil }); err != nil {
		t.Fatal(err)
	}
	p.Close() // go-plugin has copied every stderr line once the process is gone
	recs := records(t, out.String())

	info := find(recs, "making up patients")
	if info == nil {
		t.Fatalf("the plugin's line did not arrive:\n%s", out)
	}
	if info["level"] != "INFO" || info["count"] != float64(7) || info["plugin"] != "good" || info["module"] != "testplugin" {
		t.Errorf("info line = %v; want level INFO, count 7 as a field, plugin good, module testplugin", info)
	}
	warn := find(recs, "these patients are not real")
	if warn == nil || warn["level"] != "WARN" || warn["source"] != "testplugins" {
		t.Errorf("warn line = %v; want level WARN with its field source", warn)
	}
	done := find(recs, "extraction done")
	if done == nil || done["from"] != "2024-01" || done["rows"] != float64(21) {
		t.Errorf("the SDK's line = %v; want its fields from and rows", done)
	}
	for _, r := range recs {
		if _, ok := r["timestamp"]; ok {
			t.Errorf("the plugin's timestamp field was kept: %v", r)
		}
		if strings.Contains(r["msg"].(string), "@level") || strings.Contains(r["msg"].(string), "[INFO]") {
			t.Errorf("a line arrived as rendered text: %v", r)
		}
		if r["level"] == "DEBUG" {
			t.Errorf("a debug line passed a handler at INFO: %v", r)
		}
	}
}

// TestPluginErrorLogIsAnError: the SDK's line for a failed run arrives at ERROR.
func TestPluginErrorLogIsAnError(t *testing.T) {
	out := &testenv.LogBuffer{}
	p, err := launch(t, "panics", host.Options{Logger: host.SlogLogger(slog.New(slog.NewJSONHandler(out, nil)))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Extract(context.Background(), sdk.Request{From: jan, To: jan}, func(string, arrow.Record) error { return nil }); err == nil {
		t.Fatal("the panicking plugin succeeded")
	}
	p.Close()
	if r := find(records(t, out.String()), "extraction failed"); r == nil || r["level"] != "ERROR" || r["error"] == nil {
		t.Fatalf("failure line = %v; want level ERROR with the error as a field\n%s", r, out)
	}
}

func TestSlogLogger(t *testing.T) {
	var out bytes.Buffer
	l := host.SlogLogger(slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if l.GetLevel() != hclog.Debug || l.IsTrace() || !l.IsDebug() {
		t.Errorf("level %v, trace %v, debug %v; want the handler's level, debug", l.GetLevel(), l.IsTrace(), l.IsDebug())
	}
	named := l.Named("a").Named("b").With("run", "r1")
	named.Trace("not shown")
	named.Error("failed", "n", 3, "@caller", "x.go:1", "timestamp", "then", "odd")
	named.ResetNamed("c").Warn("warned")
	named.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Warn}).Print("from the standard library")
	recs := records(t, out.String())
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3:\n%s", len(recs), out.String())
	}
	r := recs[0]
	if r["level"] != "ERROR" || r["logger"] != "a.b" || r["run"] != "r1" || r["n"] != float64(3) || r["caller"] != "x.go:1" || r["EXTRA_VALUE_AT_END"] != "odd" {
		t.Errorf("record %v", r)
	}
	if _, ok := r["timestamp"]; ok {
		t.Errorf("timestamp kept: %v", r)
	}
	if recs[1]["logger"] != "c" || recs[1]["level"] != "WARN" || recs[2]["level"] != "WARN" || recs[2]["msg"] != "from the standard library" {
		t.Errorf("records %v", recs[1:])
	}
	if got := named.ImpliedArgs(); len(got) != 2 || got[0] != "run" {
		t.Errorf("implied args %v", got)
	}
	if host.SlogLogger(slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelError + 1}))).GetLevel() != hclog.Off {
		t.Error("a handler that passes nothing is not Off")
	}
}
