// Package metrics is the agent's Prometheus metrics: what ran, what failed and why, what
// waits in the spool and what was sent. Names start tributary_agent_.
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the agent's collectors in a registry of its own.
type Metrics struct {
	reg *prometheus.Registry

	Runs              *prometheus.CounterVec // by result: ok, partial, failed
	PluginLastSuccess *prometheus.GaugeVec   // unix seconds, by plugin
	PluginFailures    *prometheus.CounterVec // by plugin and kind
	PendingRuns       prometheus.Gauge
	PendingBytes      prometheus.Gauge
	BytesSent         prometheus.Counter
	ObjectsUploaded   prometheus.Counter
	RunsUploaded      prometheus.Counter
	UploadFailures    prometheus.Counter
	SpoolAlarm        *prometheus.GaugeVec // 1 while an alarm stands, by kind: size, age
	NextRun           prometheus.Gauge
	LastRun           prometheus.Gauge

	mu     sync.Mutex
	oldest time.Time
}

// New makes the collectors and registers them with Go and process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	f := promauto{m.reg}
	m.Runs = f.counterVec("runs_total", "Scheduled or one-off runs, by result: ok, partial (some plugins failed) or failed (nothing released).", "result")
	m.PluginLastSuccess = f.gaugeVec("plugin_last_success_timestamp_seconds", "When each plugin last finished a run without error (unix time).", "plugin")
	m.PluginFailures = f.counterVec("plugin_failures_total", "Plugin runs that failed, by plugin and kind (crash, timeout, bad_rows, checksum, protocol, start, plugin, cancelled, other).", "plugin", "kind")
	m.PendingRuns = f.gauge("pending_runs", "Complete runs waiting in the spool for the store to confirm them.")
	m.PendingBytes = f.gauge("pending_bytes", "Bytes of submission files waiting in the spool.")
	m.BytesSent = f.counter("uploaded_bytes_total", "Bytes of submission files the store confirmed.")
	m.ObjectsUploaded = f.counter("uploaded_objects_total", "Objects (files and manifests) the store confirmed.")
	m.RunsUploaded = f.counter("uploaded_runs_total", "Runs whose every file and manifest the store confirmed.")
	m.UploadFailures = f.counter("upload_failures_total", "Upload passes that stopped on an error (the runs stay in the spool and are retried).")
	m.SpoolAlarm = f.gaugeVec("spool_alarm", "1 while the spool is over its configured size (kind=size) or age (kind=age) limit.", "kind")
	m.NextRun = f.gauge("next_run_timestamp_seconds", "When the next scheduled run starts (unix time).")
	m.LastRun = f.gauge("last_run_timestamp_seconds", "When the last run finished (unix time).")
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tributary_agent_spool_oldest_pending_age_seconds",
		Help: "How long the oldest run in the spool has waited; 0 when none waits.",
	}, m.oldestAge))
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// SetOldest records when the oldest pending run was made (zero when none waits).
func (m *Metrics) SetOldest(t time.Time) {
	m.mu.Lock()
	m.oldest = t
	m.mu.Unlock()
}

func (m *Metrics) oldestAge() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.oldest.IsZero() {
		return 0
	}
	return time.Since(m.oldest).Seconds()
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry is for tests that read values.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

type promauto struct{ reg *prometheus.Registry }

const ns = "tributary_agent_"

func (p promauto) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: ns + name, Help: help})
	p.reg.MustRegister(c)
	return c
}

func (p promauto) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: ns + name, Help: help})
	p.reg.MustRegister(g)
	return g
}

func (p promauto) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + name, Help: help}, labels)
	p.reg.MustRegister(c)
	return c
}

func (p promauto) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ns + name, Help: help}, labels)
	p.reg.MustRegister(g)
	return g
}
