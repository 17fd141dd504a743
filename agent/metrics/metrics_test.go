package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHandlerServesEveryMetric(t *testing.T) {
	m := New()
	m.Runs.WithLabelValues("partial").Inc()
	m.PluginFailures.WithLabelValues("omop", "crash").Add(2)
	m.PluginLastSuccess.WithLabelValues("synthea").Set(1.7e9)
	m.PendingRuns.Set(3)
	m.PendingBytes.Set(4096)
	m.BytesSent.Add(100)
	m.SpoolAlarm.WithLabelValues("age").Set(1)
	m.SetOldest(time.Now().Add(-time.Hour))
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`tributary_agent_runs_total{result="partial"} 1`,
		`tributary_agent_plugin_failures_total{kind="crash",plugin="omop"} 2`,
		`tributary_agent_plugin_last_success_timestamp_seconds{plugin="synthea"} 1.7e+09`,
		`tributary_agent_pending_runs 3`,
		`tributary_agent_pending_bytes 4096`,
		`tributary_agent_uploaded_bytes_total 100`,
		`tributary_agent_spool_alarm{kind="age"} 1`,
		`tributary_agent_spool_oldest_pending_age_seconds 36`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
