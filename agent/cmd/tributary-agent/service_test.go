package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tributary-health/tributary/agent/status"
	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/figures"
	"github.com/tributary-health/tributary/coordinator/registry"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/miniotest"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/internal/testenv"
	"github.com/tributary-health/tributary/plugins/host"
)

// federation is one practice's agent and a coordinator over a store: a real MinIO bucket,
// or a directory (file://) for the tests that need no S3 server.
type federation struct {
	t       *testing.T
	dir     string
	agent   string            // the tributary-agent binary
	srv     *miniotest.Server // nil: directory stores under dir/stores
	bucket  string            // the bucket, or the directory's name under dir/stores
	store   objstore.Store
	coord   ed25519.PrivateKey
	keyFile string
}

const practice = "P1"

// newFederation sets up a federation over srv, or over a directory store when srv is nil.
func newFederation(t *testing.T, srv *miniotest.Server) *federation {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("drives processes with signals and reads /proc")
	}
	f := &federation{t: t, dir: t.TempDir(), agent: testenv.Binary(t, "./agent/cmd/tributary-agent"), srv: srv}
	f.bucket = miniotest.Bucket(t)
	f.store = f.storeOf(f.bucket)
	if code, _, errs := runCLI(t, "keys", "init", "--out", filepath.Join(f.dir, "keys")); code != 0 {
		t.Fatalf("keys init: %s", errs)
	}
	f.keyFile = filepath.Join(f.dir, "keys", "practice.key")
	f.coord = f.register(f.store)
	return f
}

// storeOf opens (making it if need be) the bucket or store directory named bucket.
func (f *federation) storeOf(bucket string) objstore.Store {
	f.t.Helper()
	if f.srv != nil {
		return f.srv.Store(f.t, bucket)
	}
	st, err := objstore.NewDir(filepath.Join(f.dir, "stores", bucket))
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

// storeSettings is the store line of an agent's configuration for bucket, and its [s3] table.
func (f *federation) storeSettings(bucket string) (store, s3 string) {
	if f.srv == nil {
		return "file://" + filepath.ToSlash(filepath.Join(f.dir, "stores", bucket)), ""
	}
	return f.srv.URL(bucket), fmt.Sprintf("[s3]\naccess_key = %q\nsecret_key = %q\n", f.srv.AccessKey, f.srv.SecretKey)
}

// register signs a registry naming the practice's key into st and returns the coordinator key.
func (f *federation) register(st objstore.Store) ed25519.PrivateKey {
	f.t.Helper()
	pemb, err := os.ReadFile(filepath.Join(f.dir, "keys", "practice.pub"))
	if err != nil {
		f.t.Fatal(err)
	}
	pub, err := formats.ParsePublicKey(pemb)
	if err != nil {
		f.t.Fatal(err)
	}
	coord := f.coord
	if coord == nil {
		if _, coord, err = formats.GenerateKey(); err != nil {
			f.t.Fatal(err)
		}
	}
	if _, err := registry.Add(context.Background(), st, coord, practice, "Surgery one", pub, time.Now()); err != nil {
		f.t.Fatal(err)
	}
	return coord
}

type plugin struct {
	name, pkg string
	config    map[string]string
}

var goodPlugin = plugin{"good", "./plugins/internal/testplugins/good", map[string]string{"rows": "300"}}

// config writes an agent configuration for bucket and spool with the plugins and extra
// settings, and returns its path.
func (f *federation) config(name, bucket, spoolDir string, plugins []plugin, extra string) string {
	f.t.Helper()
	var b strings.Builder
	store, s3 := f.storeSettings(bucket)
	fmt.Fprintf(&b, "practice = %q\nkey_file = %q\nstore = %q\nspool = %q\nlisten = \"127.0.0.1:0\"\n%s\n", practice, f.keyFile, store, spoolDir, extra)
	fmt.Fprintf(&b, "%s[months]\nfrom = \"2024-01\"\nto = \"2024-03\"\n", s3)
	for _, p := range plugins {
		bin := testenv.Binary(f.t, p.pkg)
		sum, err := host.FileSHA256(bin)
		if err != nil {
			f.t.Fatal(err)
		}
		fmt.Fprintf(&b, "[[plugins]]\nname = %q\npath = %q\nsha256 = %q\n  [plugins.config]\n", p.name, bin, sum)
		for k, v := range p.config {
			fmt.Fprintf(&b, "  %s = %q\n", k, v)
		}
	}
	path := filepath.Join(f.dir, name+".toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		f.t.Fatal(err)
	}
	return path
}

// agentProc is a running tributary-agent.
type agentProc struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited; then err is its Wait error
	err    error
}

// serving waits until the agent's service loop runs (it has written its state file), so
// it handles SIGTERM; before that the signal's default action ends it.
func (f *federation) serving(p *agentProc, spoolDir string) {
	f.t.Helper()
	f.waitFor(30*time.Second, "the agent to start serving", func() bool {
		st, err := status.Read(status.Path(spoolDir))
		return err == nil && st != nil && st.Service && st.PID == p.cmd.Process.Pid
	})
}

func (f *federation) start(cfg string, args ...string) *agentProc {
	f.t.Helper()
	logf, err := os.OpenFile(filepath.Join(f.dir, "agent.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		f.t.Fatal(err)
	}
	cmd := exec.Command(f.agent, append([]string{"run", "--config", cfg, "--log-format", "json"}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	p := &agentProc{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	f.t.Cleanup(func() { _ = cmd.Process.Kill(); <-p.exited })
	return p
}

// wait waits for the process to exit by itself.
func (f *federation) wait(p *agentProc) {
	f.t.Helper()
	select {
	case <-p.exited:
		if p.err != nil {
			f.t.Fatalf("agent exited with %v; log:\n%s", p.err, f.logTail())
		}
	case <-time.After(60 * time.Second):
		f.t.Fatalf("agent did not exit within 60s; log:\n%s", f.logTail())
	}
}

// stop sends sig and waits for the process to exit.
func (f *federation) stop(p *agentProc, sig syscall.Signal) {
	f.t.Helper()
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		if sig == syscall.SIGTERM && p.err != nil {
			f.t.Fatalf("agent exited with %v after SIGTERM; log:\n%s", p.err, f.logTail())
		}
	case <-time.After(20 * time.Second):
		f.t.Fatalf("agent did not exit within 20s of %v; log:\n%s", sig, f.logTail())
	}
}

func (f *federation) logSize() int64 {
	fi, err := os.Stat(filepath.Join(f.dir, "agent.log"))
	if err != nil {
		return 0
	}
	return fi.Size()
}

func (f *federation) logSince(off int64) string {
	b, _ := os.ReadFile(filepath.Join(f.dir, "agent.log"))
	if int64(len(b)) < off {
		return ""
	}
	return string(b[off:])
}

// waitLog waits, polling every few milliseconds, for the agent's log to say msg after off.
func (f *federation) waitLog(off int64, msg string) {
	f.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(f.logSince(off), msg) {
		if time.Now().After(deadline) {
			f.t.Fatalf("the agent's log did not say %s within 30s:\n%s", msg, f.logTail())
		}
		time.Sleep(3 * time.Millisecond)
	}
}

func (f *federation) logTail() string {
	b, _ := os.ReadFile(filepath.Join(f.dir, "agent.log"))
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// waitFor polls cond until it holds or d passes.
func (f *federation) waitFor(d time.Duration, what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out after %s waiting for %s; agent log:\n%s", d, what, f.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// storedRuns lists the run ids whose manifest is in st.
func storedRuns(t *testing.T, st objstore.Store) []string {
	t.Helper()
	infos, err := st.List(context.Background(), formats.PracticesPrefix)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, in := range infos {
		if k, err := formats.ParseKey(in.Key); err == nil && k.Manifest() {
			ids = append(ids, k.RunID)
		}
	}
	slices.Sort(ids)
	return ids
}

// spooled lists the run ids in the spool: pending (complete, not yet all confirmed) and sent.
func spooled(t *testing.T, spoolDir string) (pending, sent []string) {
	t.Helper()
	for _, sub := range []string{"runs", "sent"} {
		entries, _ := os.ReadDir(filepath.Join(spoolDir, sub))
		for _, e := range entries {
			if _, err := os.Stat(filepath.Join(spoolDir, sub, e.Name(), formats.ManifestName)); err != nil {
				continue
			}
			if sub == "runs" {
				pending = append(pending, e.Name())
			} else {
				sent = append(sent, e.Name())
			}
		}
	}
	return pending, sent
}

// combined runs the coordinator's combine over st and returns the federation table's rows.
// It fails the test if anything was quarantined or a combined run was not whole.
func (f *federation) combined(st objstore.Store) ([]string, *combine.Report) {
	f.t.Helper()
	ctx := context.Background()
	res, err := combine.Run(ctx, st, f.coord.Public().(ed25519.PublicKey), combine.Options{Workers: 2})
	if err != nil {
		f.t.Fatal(err)
	}
	if n := len(res.Report.Quarantined); n > 0 {
		f.t.Fatalf("combine quarantined %d object(s): %+v", n, res.Report.Quarantined)
	}
	for _, in := range res.Report.Inputs {
		if len(in.Files) != 1 {
			f.t.Fatalf("run %s is visible with %d files, want its one submission", in.RunID, len(in.Files))
		}
	}
	data, _, err := st.Get(ctx, res.Pointer.Objects[combine.FederationArrow].Key, 1<<30)
	if err != nil {
		f.t.Fatal(err)
	}
	var rows []string
	if _, err := combine.ReadFederationTable(data, func(r *figures.Figure) error {
		rows = append(rows, fmt.Sprintf("%s %s %s %s %s %v %d %d %d", r.Period, r.Measure, r.AgeBand, r.Sex, r.Status, deref(r.Count), r.Lower, r.Upper, r.Practices))
		return nil
	}); err != nil {
		f.t.Fatal(err)
	}
	return rows, res.Report
}

func deref(p *int64) any {
	if p == nil {
		return "null"
	}
	return *p
}

// reference is the federation table of one undisturbed run --once into a bucket of its own.
func (f *federation) reference(plugins []plugin) []string {
	f.t.Helper()
	bucket := miniotest.Bucket(f.t)
	st := f.storeOf(bucket)
	f.register(st)
	cfg := f.config("reference", bucket, filepath.Join(f.dir, "reference-spool"), plugins, "")
	out, err := exec.Command(f.agent, "run", "--once", "--config", cfg).CombinedOutput()
	if err != nil {
		f.t.Fatalf("undisturbed run --once: %v\n%s", err, out)
	}
	rows, _ := f.combined(st)
	if len(rows) == 0 {
		f.t.Fatal("the undisturbed run combined to an empty table")
	}
	return rows
}

// metric scrapes the agent's /metrics and returns the value of the series named exactly
// (with labels as printed), or -1 when absent.
func metric(t *testing.T, spoolDir, series string) float64 {
	t.Helper()
	st, err := status.Read(status.Path(spoolDir))
	if err != nil || st == nil || st.Listen == "" {
		return -1
	}
	resp, err := http.Get("http://" + st.Listen + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// TestStoreOutage: MinIO stops while the agent runs its schedule every 2 seconds; runs keep
// spooling; MinIO comes back; every pending run arrives exactly once, checksums verified,
// and the combined figures equal those of an undisturbed run.
func TestStoreOutage(t *testing.T) {
	srv := miniotest.Start(t)
	f := newFederation(t, srv)
	want := f.reference([]plugin{goodPlugin})
	spoolDir := filepath.Join(f.dir, "spool")
	cfg := f.config("agent", f.bucket, spoolDir, []plugin{goodPlugin},
		`schedule = "@every 2s"`+"\n"+`jitter = "200ms"`+"\n"+`retry_min = "200ms"`+"\n"+`retry_max = "1s"`)
	p := f.start(cfg)
	f.waitFor(60*time.Second, "a first run in the store", func() bool { return len(storedRuns(t, f.store)) >= 1 })

	inStoreBefore := storedRuns(t, f.store)
	srv.Stop()
	f.waitFor(60*time.Second, "3 runs spooled while the store is down, in the metrics", func() bool {
		return metric(t, spoolDir, "tributary_agent_pending_runs") >= 3
	})
	if n := metric(t, spoolDir, "tributary_agent_upload_failures_total"); n < 1 {
		t.Errorf("upload_failures_total = %v during the outage, want >= 1", n)
	}
	code, out, _ := runCLI(t, "status", "--config", cfg)
	if code != 0 || !strings.Contains(out, "Service: running") || !strings.Contains(out, "could not be reached") || !strings.Contains(out, "keeps trying by itself") {
		t.Errorf("status during the outage (exit %d):\n%s", code, out)
	}
	pendingAtRestart, _ := spooled(t, spoolDir)

	srv.Start()
	f.waitFor(60*time.Second, "every run spooled during the outage to arrive", func() bool {
		stored := storedRuns(t, f.store)
		for _, id := range pendingAtRestart {
			if !slices.Contains(stored, id) {
				return false
			}
		}
		return true
	})
	f.stop(p, syscall.SIGTERM)
	// What was still pending at SIGTERM (a run made just then) goes with the next start.
	f.wait(f.start(cfg, "--once"))

	pending, sent := spooled(t, spoolDir)
	stored := storedRuns(t, f.store)
	slices.Sort(sent)
	if len(pending) != 0 || !slices.Equal(sent, stored) {
		t.Fatalf("after the outage: %d run(s) still pending; %d sent per the spool, %d in the store", len(pending), len(sent), len(stored))
	}
	// Exactly once: no object was put twice (the release log has one line per put).
	rel, err := os.ReadFile(filepath.Join(spoolDir, "release.log"))
	if err != nil {
		t.Fatal(err)
	}
	puts := map[string]int{}
	for line := range strings.Lines(string(rel)) {
		if i := strings.Index(line, `"key":"`); i >= 0 {
			puts[strings.SplitN(line[i+7:], `"`, 2)[0]]++
		}
	}
	for key, n := range puts {
		if n != 1 {
			t.Errorf("%s was uploaded %d times", key, n)
		}
	}
	if len(puts) != 2*len(stored) {
		t.Errorf("release log has %d objects for %d runs, want 2 per run (its file and its manifest)", len(puts), len(stored))
	}
	rows, rep := f.combined(f.store) // verifies every signature and checksum
	if !slices.Equal(rows, want) {
		t.Fatalf("combined figures after the outage differ from an undisturbed run's (%d rows vs %d)", len(rows), len(want))
	}
	t.Logf("outage: %d runs in the store before it, %d spooled during it, %d in all; %d combined inputs, %d federation rows equal to an undisturbed run's",
		len(inStoreBefore), len(pendingAtRestart), len(stored), len(rep.Inputs), len(rows))
}

// TestKillNineLosesNothing kills the agent process with SIGKILL 20 times at random points
// while it writes and uploads runs every second, restarting it each time. After every kill a
// combine sees only whole runs and quarantines nothing; at the end every run the spool
// completed is in the store and the combined figures equal an undisturbed run's.
func TestKillNineLosesNothing(t *testing.T) {
	f := newFederation(t, nil) // a directory store: what these tests check does not need S3
	want := f.reference([]plugin{goodPlugin})
	spoolDir := filepath.Join(f.dir, "spool")
	cfg := f.config("agent", f.bucket, spoolDir, []plugin{goodPlugin},
		`schedule = "@every 1s"`+"\n"+`jitter = "0s"`+"\n"+`retry_min = "100ms"`+"\n"+`retry_max = "500ms"`)
	good := testenv.Binary(t, goodPlugin.pkg)
	const kills = 20
	phases := map[string]int{}
	for i := range kills {
		logStart := f.logSize()
		p := f.start(cfg)
		switch i % 4 {
		case 0:
			// Anywhere: starting up, resuming earlier runs, idle, or in a run.
			time.Sleep(time.Duration(rand.IntN(1800)) * time.Millisecond)
		case 1:
			// Within a run: launching the plugin and extracting.
			f.waitLog(logStart, `"msg":"run started"`)
			time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
		case 2:
			// After the plugin: aggregating and the disclosure audit (hundreds of
			// milliseconds), then writing the spool.
			f.waitLog(logStart, `"msg":"plugin finished"`)
			time.Sleep(time.Duration(rand.IntN(700)) * time.Millisecond)
		default:
			// Uploading: a directory store takes a few milliseconds per run once it is written.
			f.waitLog(logStart, `"msg":"run written to spool"`)
			time.Sleep(time.Duration(rand.IntN(15)) * time.Millisecond)
		}
		f.stop(p, syscall.SIGKILL)
		phases[killPhase(spoolDir)]++
		if pids := waitGone(good, 5*time.Second); len(pids) > 0 {
			t.Fatalf("kill %d: plugin processes %v outlived the agent", i+1, pids)
		}
		f.combined(f.store) // fails on any partial or quarantined run
	}
	pendingAfterKills, sentAfterKills := spooled(t, spoolDir)
	p := f.start(cfg)
	f.serving(p, spoolDir)
	f.waitFor(60*time.Second, "the spool to empty after the last restart", func() bool {
		pending, _ := spooled(t, spoolDir)
		return len(pending) == 0
	})
	f.stop(p, syscall.SIGTERM)
	f.wait(f.start(cfg, "--once")) // sends anything made between the last wait and SIGTERM

	pending, sent := spooled(t, spoolDir)
	stored := storedRuns(t, f.store)
	slices.Sort(sent)
	if len(pending) != 0 || !slices.Equal(sent, stored) {
		t.Fatalf("after %d kills: %d pending; the spool completed %v but the store holds %v", kills, len(pending), sent, stored)
	}
	rows, rep := f.combined(f.store)
	if !slices.Equal(rows, want) {
		t.Fatalf("combined figures after %d kills differ from an undisturbed run's (%d rows vs %d)", kills, len(rows), len(want))
	}
	t.Logf("where the kills landed: %v", phases)
	t.Logf("%d kills: %d runs pending and %d sent right after the kills; %d runs in the store at the end, all whole; %d combined inputs; %d federation rows equal to an undisturbed run's",
		kills, len(pendingAfterKills), len(sentAfterKills), len(stored), len(rep.Inputs), len(rows))
}

// killPhase says what the spool shows a kill interrupted: writing a run (files without a
// manifest), uploading one (some objects confirmed), a run written but not yet sent, or
// nothing under way.
func killPhase(spoolDir string) string {
	entries, _ := os.ReadDir(filepath.Join(spoolDir, "runs"))
	phase := "idle or extracting"
	for _, e := range entries {
		dir := filepath.Join(spoolDir, "runs", e.Name())
		if _, err := os.Stat(filepath.Join(dir, formats.ManifestName)); err != nil {
			return "writing"
		}
		if sent, _ := os.ReadDir(filepath.Join(dir, "sent")); len(sent) > 0 {
			phase = "uploading"
		} else if phase == "idle or extracting" {
			phase = "written, not yet sent"
		}
	}
	return phase
}

// TestCrashingPluginDoesNotStopOthers: a plugin that crashes on every run, one that hangs
// past its timeout and one that sends rows breaking the contract fail their runs, counted
// by kind and shown by status, while the good plugin's submissions go on arriving.
func TestCrashingPluginDoesNotStopOthers(t *testing.T) {
	f := newFederation(t, nil) // a directory store: what these tests check does not need S3
	spoolDir := filepath.Join(f.dir, "spool")
	plugins := []plugin{
		{"crashes", "./plugins/internal/testplugins/crashes", nil},
		goodPlugin,
		{"hangs", "./plugins/internal/testplugins/hangs", nil},
		{"badrows", "./plugins/internal/testplugins/badrows", map[string]string{"mode": "value"}},
	}
	cfg := f.config("agent", f.bucket, spoolDir, plugins,
		`schedule = "@every 1s"`+"\n"+`jitter = "0s"`+"\n"+`plugin_run_timeout = "3s"`)
	p := f.start(cfg)
	// Each plugin must fail three times as what it is. A run on a loaded machine can fail a
	// plugin otherwise (a start that outlasts the run's timeout is a timeout), so this waits
	// for three of each kind rather than reading the counters when the third run arrives.
	failures := []string{
		`tributary_agent_plugin_failures_total{kind="crash",plugin="crashes"}`,
		`tributary_agent_plugin_failures_total{kind="timeout",plugin="hangs"}`,
		`tributary_agent_plugin_failures_total{kind="bad_rows",plugin="badrows"}`,
	}
	seen := map[string]float64{}
	f.waitFor(180*time.Second, "3 runs in the store and 3 failures of each failing plugin, counted by kind", func() bool {
		if len(storedRuns(t, f.store)) < 3 {
			return false
		}
		for _, series := range failures {
			if n := metric(t, spoolDir, series); n < 3 {
				if seen[series] != n {
					seen[series] = n
					t.Logf("%s = %v so far", series, n)
				}
				return false
			}
		}
		return true
	})
	if n := metric(t, spoolDir, `tributary_agent_plugin_last_success_timestamp_seconds{plugin="good"}`); n < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("good's last success = %v, want within the last minute", n)
	}
	if n := metric(t, spoolDir, `tributary_agent_runs_total{result="partial"}`); n < 3 {
		t.Errorf("partial runs = %v, want >= 3", n)
	}
	code, out, _ := runCLI(t, "status", "--config", cfg)
	for _, want := range []string{"crashes: FAILING", "(crash)", "hangs: FAILING", "(timeout)", "badrows: FAILING", "(bad_rows)", "good: OK", "What to do"} {
		if !strings.Contains(out, want) {
			t.Errorf("status does not say %q:\n%s", want, out)
		}
	}
	if code != exitAttention {
		t.Errorf("status exit code %d, want %d when a plugin fails", code, exitAttention)
	}
	f.stop(p, syscall.SIGTERM)
	_, rep := f.combined(f.store)
	for _, in := range rep.Inputs {
		m, _, err := f.store.Get(context.Background(), in.Manifest, formats.MaxEnvelopeBytes)
		if err != nil {
			t.Fatal(err)
		}
		man, _, err := formats.ReadManifestUnverified(m)
		if err != nil {
			t.Fatal(err)
		}
		if len(man.Extractors) != 1 || !strings.HasPrefix(man.Extractors[0], "good@") {
			t.Errorf("run %s's manifest names %v, want the good plugin only", in.RunID, man.Extractors)
		}
	}
	for _, p := range plugins {
		if pids := waitGone(testenv.Binary(t, p.pkg), 5*time.Second); len(pids) > 0 {
			t.Errorf("plugin %s still running after the agent stopped: %v", p.name, pids)
		}
	}
}

// TestNoPluginOutlivesAgent stops the agent while a plugin is mid-run, with SIGTERM and
// with SIGKILL, and scans /proc for the plugin.
func TestNoPluginOutlivesAgent(t *testing.T) {
	f := newFederation(t, nil) // a directory store: what these tests check does not need S3
	hangs := plugin{"hangs", "./plugins/internal/testplugins/hangs", nil}
	cfg := f.config("agent", f.bucket, filepath.Join(f.dir, "spool"), []plugin{hangs},
		`schedule = "@every 1s"`+"\n"+`jitter = "0s"`)
	bin := testenv.Binary(t, hangs.pkg)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		p := f.start(cfg)
		f.waitFor(30*time.Second, "the plugin to be running", func() bool { return len(running(bin)) > 0 })
		if sig == syscall.SIGTERM {
			// A one-off run beside the service would discard the run it is writing.
			code, _, errs := runCLI(t, "run", "--once", "--config", cfg)
			if code == 0 || !strings.Contains(errs, "another tributary-agent is running over this spool") {
				t.Errorf("run --once beside the running service: exit %d, %s", code, errs)
			}
		}
		f.stop(p, sig)
		if pids := waitGone(bin, 5*time.Second); len(pids) > 0 {
			t.Errorf("after %v of the agent, plugin processes %v are left", sig, pids)
		}
	}
}

// running returns the pids of processes whose executable is path (Linux: /proc).
func running(path string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink("/proc/" + e.Name() + "/exe"); err == nil && strings.TrimSuffix(exe, " (deleted)") == path {
			pids = append(pids, pid)
		}
	}
	return pids
}

func waitGone(path string, d time.Duration) []int {
	deadline := time.Now().Add(d)
	for {
		if pids := running(path); len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(50 * time.Millisecond)
	}
}
