package service

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tributary-health/tributary/agent"
	"github.com/tributary-health/tributary/agent/config"
	"github.com/tributary-health/tributary/agent/status"
	"github.com/tributary-health/tributary/internal/miniotest"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/internal/testenv"
	"github.com/tributary-health/tributary/plugins/host"
)

// TestOutboxRetriesBetweenRuns: a run spooled while MinIO is down is sent by the outbox's
// retries as soon as MinIO is back, with the next scheduled run an hour away; meanwhile the
// spool's age alarm stands in the metrics, the state file and the status report, and clears
// when the run is sent.
func TestOutboxRetriesBetweenRuns(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := miniotest.Bucket(t)
	srv.Store(t, bucket) // creates the bucket
	srv.Stop()

	dir := t.TempDir()
	priv, _, err := agent.InitKeys(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	plugin := testenv.Binary(t, "./plugins/internal/testplugins/good")
	sum, err := host.FileSHA256(plugin)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(fmt.Appendf(nil, `practice = "P1"
key_file = %q
store = %q
spool = %q
schedule = "@every 1h"
jitter = "0s"
retry_min = "100ms"
retry_max = "400ms"
spool_max_age = "1ms"
listen = "off"
[s3]
access_key = %q
secret_key = %q
[months]
from = "2024-01"
to = "2024-02"
[[plugins]]
name = "good"
path = %q
sha256 = %q
`, priv, srv.URL(bucket), filepath.Join(dir, "spool"), srv.AccessKey, srv.SecretKey, plugin, sum))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := agent.Open(ctx, cfg, agent.HostLauncher(cfg, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Once(ctx)
	if err != nil || !errors.Is(rep.UploadErr, objstore.ErrUnavailable) {
		t.Fatalf("with MinIO down the run must be spooled and its upload fail as unavailable: %v, %v", err, rep.UploadErr)
	}
	m := r.Metrics
	if v := testutil.ToFloat64(m.SpoolAlarm.WithLabelValues("age")); v != 1 {
		t.Errorf("spool age alarm = %v, want 1 with a run waiting longer than spool_max_age", v)
	}
	st, err := status.Read(status.Path(cfg.Spool))
	if err != nil || st == nil || len(st.Alarms) == 0 || st.LastRun == nil || st.LastRun.Result != status.ResultOK || st.Upload.LastError == "" {
		t.Fatalf("state after the spooled run: %+v, %v", st, err)
	}

	sctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- r.Serve(sctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for testutil.ToFloat64(m.UploadFailures) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("the outbox made %v attempts in 30s while the store was down, want several", testutil.ToFloat64(m.UploadFailures))
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.Start()
	for {
		s, err := a.Spool.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if s.PendingRuns == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run was not sent within 30s of MinIO coming back; %d pending", s.PendingRuns)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10s of its context ending")
	}
	if runs := testutil.CollectAndCount(m.Runs); runs != 1 || testutil.ToFloat64(m.Runs.WithLabelValues(status.ResultOK)) != 1 {
		t.Fatalf("runs: want only the one run --once made (the schedule's next is an hour away)")
	}
	if v := testutil.ToFloat64(m.RunsUploaded); v != 1 {
		t.Errorf("runs uploaded = %v, want 1", v)
	}
	if v := testutil.ToFloat64(m.ObjectsUploaded); v != 2 {
		t.Errorf("objects uploaded = %v, want 2 (the run's submission and its manifest)", v)
	}
	if v := testutil.ToFloat64(m.SpoolAlarm.WithLabelValues("age")); v != 0 {
		t.Errorf("spool age alarm = %v after the spool emptied, want 0", v)
	}
	st, _ = status.Read(status.Path(cfg.Spool))
	if st == nil || len(st.Alarms) != 0 || !st.Upload.NextRetry.IsZero() || st.Upload.LastSuccess.Before(st.Upload.LastErrorTime) {
		t.Fatalf("state after the outbox emptied: %+v", st)
	}
	var b strings.Builder
	status.Report(&b, status.Input{Practice: "P1", Plugins: []string{"good"}, State: st, Now: time.Now()})
	if !strings.Contains(b.String(), "good: OK") || !strings.Contains(b.String(), "nothing waiting") {
		t.Fatalf("status after recovery:\n%s", b.String())
	}
}

// TestStoppingIsNoFailure: a run cut short because the agent is stopping records no plugin
// failure and no failed run, so status after a restart does not blame a plugin.
func TestStoppingIsNoFailure(t *testing.T) {
	dir := t.TempDir()
	priv, _, err := agent.InitKeys(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	plugin := testenv.Binary(t, "./plugins/internal/testplugins/hangs")
	sum, _ := host.FileSHA256(plugin)
	cfg, err := config.Parse(fmt.Appendf(nil, "practice = \"P1\"\nkey_file = %q\nstore = \"file://%s\"\nspool = %q\nlisten = \"off\"\n[[plugins]]\nname = \"hangs\"\npath = %q\nsha256 = %q\n",
		priv, filepath.ToSlash(filepath.Join(dir, "store")), filepath.Join(dir, "spool"), plugin, sum))
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.Open(context.Background(), cfg, agent.HostLauncher(cfg, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := r.Once(ctx); err == nil {
		t.Fatal("a run cut short must return its context's error")
	}
	if n := testutil.CollectAndCount(r.Metrics.PluginFailures) + testutil.CollectAndCount(r.Metrics.Runs); n != 0 {
		t.Fatalf("%d failure or run series recorded for a run cut short by stopping", n)
	}
	st, _ := status.Read(status.Path(cfg.Spool))
	if st == nil || st.LastRun != nil || len(st.Plugins) != 0 || st.Upload.LastError != "" {
		t.Fatalf("state after a run cut short: %+v", st)
	}
}
