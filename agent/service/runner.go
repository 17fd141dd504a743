// Package service runs the agent as a practice's service: runs on a schedule, an outbox
// that retries uploads for as long as the store is down, a local health and metrics
// endpoint, a state file for 'tributary-agent status', and installation as a systemd unit or
// a Windows service.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tributary-health/tributary/agent"
	"github.com/tributary-health/tributary/agent/config"
	"github.com/tributary-health/tributary/agent/metrics"
	"github.com/tributary-health/tributary/agent/schedule"
	"github.com/tributary-health/tributary/agent/status"
)

// Runner runs an agent: once (run --once), or on its schedule (the service). Both go
// through Once, so a one-off run and a scheduled one are the same code.
type Runner struct {
	Agent    *agent.Agent
	Schedule *schedule.Schedule
	Metrics  *metrics.Metrics
	Log      *slog.Logger

	mu       sync.Mutex
	state    status.State
	alarms   map[string]bool
	retrying bool          // the outbox is waiting to retry after an error
	wake     chan struct{} // tells the outbox to try now
}

// New makes a runner for a, keeping the plugin history of an earlier state file and removing
// what an interrupted write of it left (the caller holds the spool's lock).
func New(a *agent.Agent, log *slog.Logger) (*Runner, error) {
	cfg := a.Config
	sch, err := schedule.Parse(cfg.Schedule, cfg.Jitter.Duration)
	if err != nil {
		return nil, fmt.Errorf("schedule: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Runner{Agent: a, Schedule: sch, Metrics: metrics.New(), Log: log, alarms: map[string]bool{}, wake: make(chan struct{}, 1)}
	if err := status.Clean(status.Path(cfg.Spool)); err != nil {
		log.Warn("cannot remove a temporary file an interrupted write of the state file left", "error", err)
	}
	if old, err := status.Read(status.Path(cfg.Spool)); err == nil && old != nil {
		r.state.Plugins = old.Plugins
		r.state.Upload = old.Upload
		r.state.LastRun = old.LastRun
	}
	if r.state.Plugins == nil {
		r.state.Plugins = map[string]*status.Plugin{}
	}
	r.state.PID = os.Getpid()
	r.state.Schedule = sch.String()
	for name, p := range r.state.Plugins {
		if !p.LastSuccess.IsZero() {
			r.Metrics.PluginLastSuccess.WithLabelValues(name).Set(float64(p.LastSuccess.Unix()))
		}
	}
	return r, nil
}

// Once runs the agent once: extract, release, spool and upload, then records the outcome in
// the metrics and the state file.
func (r *Runner) Once(ctx context.Context) (*agent.RunReport, error) {
	rep, err := r.Agent.RunOnce(ctx)
	if ctx.Err() != nil {
		// The agent is stopping: what the run left undone is not a plugin's or the store's
		// failure, and must not show as one; the next run starts afresh.
		if rep != nil {
			r.countUpload(rep.Upload)
		}
		r.refresh()
		return rep, err
	}
	r.recordRun(rep, err)
	if rep != nil && (rep.Files > 0 || rep.UploadErr != nil) {
		r.recordUpload(rep.Upload, rep.UploadErr)
	}
	r.refresh()
	return rep, err
}

// Serve runs on the schedule until ctx is done, with the outbox and the endpoint beside it.
// Pending uploads are resumed at once, oldest first, each run's manifest last.
func (r *Runner) Serve(ctx context.Context) error {
	cfg := r.Agent.Config
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.mu.Lock()
	r.state.Service = true
	r.mu.Unlock()

	var wg sync.WaitGroup
	defer wg.Wait()
	if cfg.Listen != config.ListenOff {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return fmt.Errorf("listen %s: %w; is another agent already running? Change 'listen' in the configuration, or \"off\"", cfg.Listen, err)
		}
		r.mu.Lock()
		r.state.Listen = ln.Addr().String()
		r.mu.Unlock()
		srv := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 5 * time.Second}
		wg.Go(func() { _ = srv.Serve(ln) })
		wg.Go(func() {
			<-ctx.Done()
			sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer scancel()
			_ = srv.Shutdown(sctx)
		})
		r.Log.Info("health and metrics endpoint", "address", "http://"+ln.Addr().String(), "paths", "/healthz /metrics")
	}
	wg.Go(func() { r.outbox(ctx) })
	wg.Go(func() { r.heartbeat(ctx) })
	r.Log.Info("service started", "practice", cfg.Practice, "schedule", r.Schedule.String(), "jitter", r.Schedule.Jitter().String(), "plugins", len(cfg.Plugins))

	for {
		next := r.Schedule.Next(time.Now())
		r.mu.Lock()
		r.state.NextRun = next
		r.mu.Unlock()
		r.Metrics.NextRun.Set(float64(next.Unix()))
		r.refresh()
		r.Log.Info("next run", "at", next.Format(time.RFC3339))
		if !sleepUntil(ctx, next) {
			r.Log.Info("service stopping")
			cancel()
			wg.Wait()
			r.refresh()
			return nil
		}
		rep, err := r.Once(ctx)
		if err != nil && ctx.Err() == nil {
			r.Log.Error("run failed; the next scheduled run tries again", "error", err)
		}
		if rep != nil && rep.UploadErr != nil {
			r.kick()
		}
	}
}

// sleepUntil waits for the wall clock to reach t, checking it at least every minute so a
// machine that was asleep runs when it wakes; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	for {
		d := time.Until(t)
		if d <= 0 {
			return true
		}
		timer := time.NewTimer(min(d, time.Minute))
		select {
		case <-ctx.Done():
			timer.Stop()
			return false
		case <-timer.C:
		}
	}
}

// kick asks the outbox to try now, unless it is already waiting out a backoff.
func (r *Runner) kick() {
	r.mu.Lock()
	retrying := r.retrying
	r.mu.Unlock()
	if retrying {
		return
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// outbox uploads whatever is pending, now and whenever kicked, and after a failure retries
// with exponential backoff and jitter, from retry_min up to retry_max, for as long as it takes.
func (r *Runner) outbox(ctx context.Context) {
	cfg := r.Agent.Config
	var backoff time.Duration
	timer := time.NewTimer(0) // resume at start
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-timer.C:
		}
		res, err := r.Agent.Uploader.UploadPending(ctx)
		stopping := ctx.Err() != nil
		if stopping && err != nil {
			// Stopped mid-pass: what was sent is still counted; the upload cut short is no
			// failure of the store.
			r.countUpload(res)
			return
		}
		// A pass that finished as the service was stopped is recorded like any other: its
		// runs left the spool, so the metrics and the state file must say they were sent.
		r.recordUpload(res, err)
		if err == nil {
			backoff = 0
			r.mu.Lock()
			r.retrying, r.state.Upload.NextRetry = false, time.Time{}
			r.mu.Unlock()
			r.refresh()
			if stopping {
				return
			}
			continue
		}
		backoff = min(max(2*backoff, cfg.RetryMin.Duration), cfg.RetryMax.Duration)
		wait := backoff/2 + rand.N(backoff/2+1) // jitter: the practices of a federation spread out
		next := time.Now().Add(wait)
		r.mu.Lock()
		r.retrying, r.state.Upload.NextRetry = true, next
		r.mu.Unlock()
		r.Log.Warn("upload failed; the runs wait in the spool and are sent when the store answers", "error", err, "runs_pending", res.RunsPending, "retry_in", wait.Round(time.Millisecond).String())
		r.refresh()
		timer.Reset(wait)
	}
}

func (r *Runner) heartbeat(ctx context.Context) {
	t := time.NewTicker(status.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.refresh()
		}
	}
}

// Handler serves /healthz and /metrics.
func (r *Runner) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", r.Metrics.Handler())
	return mux
}

func (r *Runner) recordRun(rep *agent.RunReport, err error) {
	now := time.Now()
	m := r.Metrics
	result := status.ResultOK
	switch {
	case err != nil:
		result = status.ResultFailed
	case rep.Failed():
		result = status.ResultPartial
	}
	m.Runs.WithLabelValues(result).Inc()
	m.LastRun.Set(float64(now.Unix()))
	r.mu.Lock()
	defer r.mu.Unlock()
	run := &status.Run{Finished: now, Result: result}
	if rep != nil {
		run.ID, run.Files = rep.RunID, rep.Files
		if rep.DefinitionsErr != nil {
			run.MeasuresError = clip(rep.DefinitionsErr.Error())
		}
		for _, a := range rep.Absent {
			run.Absent = append(run.Absent, a.Measure+": "+a.Reason)
		}
		for _, p := range rep.Plugins {
			ps := r.state.Plugins[p.Name]
			if ps == nil {
				ps = &status.Plugin{}
				r.state.Plugins[p.Name] = ps
			}
			if p.Err == nil {
				ps.LastSuccess, ps.FailuresInARow = now, 0
				m.PluginLastSuccess.WithLabelValues(p.Name).Set(float64(now.Unix()))
				continue
			}
			kind := agent.FailureKind(p.Err)
			m.PluginFailures.WithLabelValues(p.Name, kind).Inc()
			ps.LastFailure, ps.FailureKind, ps.FailureReason = now, kind, clip(p.Err.Error())
			ps.FailuresInARow++
		}
	}
	if err != nil {
		run.Error = clip(err.Error())
	}
	r.state.LastRun = run
}

// countUpload adds what a pass sent to the metrics.
func (r *Runner) countUpload(res agent.UploadResult) {
	r.Metrics.BytesSent.Add(float64(res.BytesSent))
	r.Metrics.ObjectsUploaded.Add(float64(res.FilesSent))
	r.Metrics.RunsUploaded.Add(float64(res.RunsSent))
}

// recordUpload records a finished pass: counts, and the outbox's success or error.
func (r *Runner) recordUpload(res agent.UploadResult, err error) {
	m := r.Metrics
	r.countUpload(res)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		m.UploadFailures.Inc()
		r.state.Upload.LastError, r.state.Upload.LastErrorTime = clip(err.Error()), time.Now()
		return
	}
	r.state.Upload.LastSuccess = time.Now()
}

// refresh reads the spool into the metrics, raises or clears the spool alarms and writes
// the state file.
func (r *Runner) refresh() {
	cfg := r.Agent.Config
	stats, err := r.Agent.Spool.Stats()
	if err != nil {
		r.Log.Error("cannot read the spool", "error", err)
		return
	}
	m := r.Metrics
	m.PendingRuns.Set(float64(stats.PendingRuns))
	m.PendingBytes.Set(float64(stats.PendingBytes))
	m.SetOldest(stats.Oldest)
	now := time.Now()
	maxBytes := cfg.SpoolMaxMB << 20
	over := map[string]bool{
		"size": maxBytes > 0 && stats.PendingBytes > maxBytes,
		"age":  cfg.SpoolMaxAge.Duration > 0 && !stats.Oldest.IsZero() && now.Sub(stats.Oldest) > cfg.SpoolMaxAge.Duration,
	}
	words := status.Alarms(stats, maxBytes, cfg.SpoolMaxAge.Duration, now)
	r.mu.Lock()
	for kind, on := range over {
		v := 0.0
		if on {
			v = 1
		}
		m.SpoolAlarm.WithLabelValues(kind).Set(v)
		switch {
		case on && !r.alarms[kind]:
			r.Log.Error("SPOOL ALARM: runs are piling up because the store has not accepted them; nothing is deleted. Check the network, then tell the federation lead", "limit", kind, "detail", strings.Join(words, "; "), "runs_pending", stats.PendingRuns, "bytes_pending", stats.PendingBytes)
		case !on && r.alarms[kind]:
			r.Log.Info("spool alarm cleared", "limit", kind)
		}
		r.alarms[kind] = on
	}
	r.state.Alarms = words
	r.state.Updated = now
	st := r.state
	err = status.Write(status.Path(cfg.Spool), &st)
	r.mu.Unlock()
	if err != nil {
		r.Log.Error("cannot write the state file", "error", err)
	}
}

func clip(s string) string {
	const n = 400
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// ErrRunning: the service already runs over this spool.
var ErrRunning = errors.New("the service is running over this spool")
