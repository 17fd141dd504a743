package host_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/hashicorp/go-hclog"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/testenv"
	"github.com/tributary-health/tributary/plugins/host"
	"github.com/tributary-health/tributary/plugins/internal/testplugins"
	"github.com/tributary-health/tributary/plugins/sdk"
)

var bins map[string]string

func TestMain(m *testing.M) {
	if os.Getenv(agentEnv) != "" {
		runAgent() // this binary re-executed as a stand-in agent: see TestPluginDiesWithAgent
		return
	}
	testplugins.TestMain(m, &bins, nil)
}

// launch starts a test plugin with its correct checksum and registers the checks every test
// ends with: Close, then no process left running the binary.
func launch(t *testing.T, name string, opts host.Options) (*host.Plugin, error) {
	t.Helper()
	opts.Path = bins[name]
	if opts.SHA256 == "" {
		sum, err := host.FileSHA256(opts.Path)
		if err != nil {
			t.Fatal(err)
		}
		opts.SHA256 = sum
	}
	if opts.Logger == nil {
		opts.Logger = hclog.New(&hclog.LoggerOptions{Output: &testenv.LogBuffer{}, Level: hclog.Debug})
	}
	assertNoneLeft(t, name)
	p, err := host.Launch(context.Background(), opts)
	if err == nil {
		t.Cleanup(func() { p.Close() })
	}
	return p, err
}

// assertNoneLeft checks, after the test and its Close, that no process runs the binary.
func assertNoneLeft(t *testing.T, name string) {
	t.Helper()
	t.Cleanup(func() {
		if pids := testplugins.WaitGone(bins[name], 3*time.Second); len(pids) > 0 {
			t.Errorf("plugin %s still running after the test: pids %v", name, pids)
		}
	})
}

var jan = formats.MonthFor(2024, 1)

func TestGoodPlugin(t *testing.T) {
	logs := &testenv.LogBuffer{}
	p, err := launch(t, "good", host.Options{Logger: hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})})
	if err != nil {
		t.Fatal(err)
	}
	d := p.Describe()
	if d.Name != "testplugin" || d.SDK != sdk.Name || len(d.ProtocolVersions) != 1 || len(d.RowKinds) != 2 {
		t.Fatalf("Describe = %+v", d)
	}
	if !hasKey(d.Config, sdk.ConfigMaxSkippedFraction) {
		t.Errorf("Describe lacks the generic key %s", sdk.ConfigMaxSkippedFraction)
	}
	if err := p.ValidateConfig(context.Background(), map[string]string{"rows": "5"}); err != nil {
		t.Fatalf("good config refused: %v", err)
	}
	err = p.ValidateConfig(context.Background(), map[string]string{"rows": "many"})
	if !errors.Is(err, sdk.ErrConfig) || !strings.Contains(err.Error(), "rows must be a whole number") {
		t.Fatalf("bad config: err = %v", err)
	}

	rows := map[string]int64{}
	sum, err := p.Extract(context.Background(), sdk.Request{From: jan, To: jan + 2, Config: map[string]string{"rows": "1000"}},
		func(kind string, rec arrow.Record) error {
			rows[kind] += rec.NumRows()
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if rows[formats.RowRegistrations] != 1000 || rows[formats.RowEvents] != 2000 {
		t.Fatalf("rows received %v", rows)
	}
	if sum.Rows[formats.RowEvents] != 2000 || sum.Chunks < 2 || sum.MaxChunkBytes == 0 || sum.MaxChunkBytes > sdk.MaxChunkBytes {
		t.Fatalf("summary %+v", sum)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() {
		t.Fatal("process still alive after Close")
	}
	if !strings.Contains(logs.String(), "making up patients") {
		t.Errorf("the plugin's stderr log did not reach the agent's logger:\n%s", logs)
	}
	if strings.Contains(logs.String(), "patient-0") {
		t.Errorf("a patient key reached the log")
	}
	if err := p.ValidateConfig(context.Background(), nil); !errors.Is(err, host.ErrClosed) {
		t.Fatalf("call after Close: err = %v", err)
	}
}

func hasKey(keys []sdk.ConfigKey, name string) bool {
	for _, k := range keys {
		if k.Name == name {
			return true
		}
	}
	return false
}

func TestPanicFailsTheRunNotTheHost(t *testing.T) {
	p, err := launch(t, "panics", host.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Extract(context.Background(), sdk.Request{From: jan, To: jan}, func(string, arrow.Record) error { return nil })
	if !errors.Is(err, sdk.ErrPanic) || !errors.Is(err, host.ErrPlugin) {
		t.Fatalf("err = %v, want a panic", err)
	}
	t.Log(err)
	for _, want := range []string{"Extract panicked at panics/main.go", "index out of range"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// The plugin survived its own panic and still answers.
	if err := p.ValidateConfig(context.Background(), nil); err != nil {
		t.Fatalf("after the panic: %v", err)
	}
}

func TestHangIsKilledAtItsTimeout(t *testing.T) {
	t.Run("extract", func(t *testing.T) {
		p, err := launch(t, "hangs", host.Options{ExtractTimeout: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = p.Extract(context.Background(), sdk.Request{From: jan, To: jan}, func(string, arrow.Record) error { return nil })
		if !errors.Is(err, host.ErrTimeout) {
			t.Fatalf("err = %v, want a timeout", err)
		}
		t.Log(err)
		if !p.Exited() {
			t.Fatal("the plugin is still running after its timeout")
		}
		t.Logf("killed %v after the call began", time.Since(start).Round(time.Millisecond))
	})
	t.Run("cancelled", func(t *testing.T) {
		p, err := launch(t, "hangs", host.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err = p.Extract(ctx, sdk.Request{From: jan, To: jan}, func(string, arrow.Record) error { return nil })
		if err == nil || !p.Exited() {
			t.Fatalf("err = %v, exited = %v: a cancelled call must kill the plugin", err, p.Exited())
		}
	})
	t.Run("start", func(t *testing.T) {
		_, err := launch(t, "hangs", host.Options{StartTimeout: 500 * time.Millisecond, Env: []string{"TESTPLUGIN_HANG=start"}})
		if !errors.Is(err, host.ErrTimeout) {
			t.Fatalf("err = %v, want a start timeout", err)
		}
	})
}

func TestWrongChecksumRefusedBeforeStart(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "started")
	env := []string{testplugins.MarkerEnv + "=" + marker}
	actual, err := host.FileSHA256(bins["good"])
	if err != nil {
		t.Fatal(err)
	}
	wrong := strings.Repeat("ab", 32)
	tests := []struct {
		name   string
		sha    string
		kind   error
		saying []string
	}{
		{"wrong", wrong, host.ErrChecksum, []string{"expected sha256 " + wrong, "the file has " + actual, "not started"}},
		{"malformed", "xyz", host.ErrNotPinned, []string{"64 hexadecimal digits"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := launch(t, "good", host.Options{SHA256: tt.sha, Env: env})
			if !errors.Is(err, tt.kind) {
				t.Fatalf("err = %v, want %v", err, tt.kind)
			}
			t.Log(err)
			for _, s := range tt.saying {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the plugin ran (marker: %v)", err)
			}
		})
	}
	t.Run("unpinned", func(t *testing.T) {
		_, err := host.Launch(context.Background(), host.Options{Path: bins["good"], Env: env})
		if !errors.Is(err, host.ErrNotPinned) || !strings.Contains(err.Error(), actual) {
			t.Fatalf("err = %v, want not pinned, naming the checksum to pin", err)
		}
		if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the plugin ran (marker: %v)", err)
		}
	})
	// The marker does work: the right checksum starts the plugin, which writes it.
	t.Run("right", func(t *testing.T) {
		if _, err := launch(t, "good", host.Options{Env: env}); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(marker); err != nil {
			t.Fatalf("the started plugin wrote no marker: %v", err)
		}
	})
}

func TestOtherProtocolVersionRefused(t *testing.T) {
	_, err := launch(t, "oldproto", host.Options{})
	if !errors.Is(err, host.ErrProtocol) {
		t.Fatalf("err = %v, want a protocol mismatch", err)
	}
	t.Log(err)
	for _, want := range []string{"protocol version 0", "this agent speaks version 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestBadRowsFailNamingKindAndField(t *testing.T) {
	tests := []struct {
		mode   string
		saying []string
	}{
		{"type", []string{"events", "field start has type utf8", "date32"}},
		{"missing", []string{"events", "missing field end"}},
		{"value", []string{"registrations", "row 0", "field sex"}},
		{"undeclared", []string{"events", "row 0", "field kind", "does not supply with this configuration"}},
		{"unsupplied", []string{"events", "row 0", "field kind", "does not supply with this configuration (it supplies consultation)"}},
		{"huge", []string{"larger than the protocol allows"}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			p, err := launch(t, "badrows", host.Options{})
			if err != nil {
				t.Fatal(err)
			}
			calls := 0
			_, err = p.Extract(context.Background(), sdk.Request{From: jan, To: jan, Config: map[string]string{"mode": tt.mode}},
				func(string, arrow.Record) error { calls++; return nil })
			if !errors.Is(err, host.ErrContract) {
				t.Fatalf("err = %v, want a contract error", err)
			}
			t.Log(err)
			for _, s := range tt.saying {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "patient-1") || strings.Contains(err.Error(), "not-a-sex") {
				t.Errorf("error %q carries a row value", err)
			}
			if calls != 0 {
				t.Errorf("the agent was handed %d bad batches", calls)
			}
		})
	}
}

func TestCrashFailsTheRun(t *testing.T) {
	p, err := launch(t, "crashes", host.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Extract(context.Background(), sdk.Request{From: jan, To: jan}, func(string, arrow.Record) error { return nil })
	if !errors.Is(err, host.ErrCrashed) || !strings.Contains(err.Error(), "exit status 2") {
		t.Fatalf("err = %v, want a crash with its exit status", err)
	}
	t.Log(err)
}

func TestStdoutIsCountedAndDiscarded(t *testing.T) {
	p, err := launch(t, "good", host.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Extract(context.Background(), sdk.Request{From: jan, To: jan, Config: map[string]string{"print_to_stdout": "yes"}},
		func(string, arrow.Record) error { return nil }); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for p.StdoutBytes() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if p.StdoutBytes() == 0 {
		t.Fatal("stdout output was not noticed")
	}
}

func TestDiscover(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(bins["good"])
	if err != nil {
		t.Fatal(err)
	}
	files := []struct {
		name string
		mode os.FileMode
	}{{"b-plugin", 0o755}, {"a-plugin", 0o700}, {"notes.txt", 0o644}, {".hidden", 0o755}}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), data, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := host.Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	sum, _ := host.FileSHA256(bins["good"])
	if len(got) != 2 || got[0].Name != "a-plugin" || got[1].Name != "b-plugin" || got[0].SHA256 != sum || !filepath.IsAbs(got[0].Path) {
		t.Fatalf("Discover = %+v", got)
	}
	if _, err := host.Discover(filepath.Join(dir, "absent")); err == nil {
		t.Fatal("a missing directory was not an error")
	}
}

// lateContext is a context whose deadline has passed but which has not noticed yet: its Err
// is still nil. That is the state a real context is in between its deadline and the moment
// its timer fires, which on a loaded machine can be long enough for the plugin's own side of
// the call (its copy of the deadline) to end the stream first.
type lateContext struct {
	context.Context
	deadline time.Time
}

func (c lateContext) Deadline() (time.Time, bool) { return c.deadline, true }

// TestDeadlinePassedBeforeContextNoticed is the race TestHangIsKilledAtItsTimeout lost under
// load, made certain: the stream ends with DeadlineExceeded before the host's context says
// so. It is still the host's timeout, and the plugin must be killed.
func TestDeadlinePassedBeforeContextNoticed(t *testing.T) {
	p, err := launch(t, "hangs", host.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The deadline passes while the stream is open: gRPC sent it along, so the plugin's side
	// ends the stream, and the host's context never notices.
	ctx := lateContext{context.Background(), time.Now().Add(300 * time.Millisecond)}
	_, err = p.Extract(ctx, sdk.Request{From: jan, To: jan}, func(string, arrow.Record) error { return nil })
	if !errors.Is(err, host.ErrTimeout) || errors.Is(err, host.ErrPlugin) {
		t.Fatalf("err = %v, want a timeout, not the plugin's failure", err)
	}
	if !p.Exited() {
		t.Fatal("the plugin is still running after its timeout")
	}
}

// TestSuppliesDependOnConfig: a plugin says what it supplies with each configuration, within
// what its Describe lists; one built before it could say supplies Describe's lists.
func TestSuppliesDependOnConfig(t *testing.T) {
	p, err := launch(t, "good", host.Options{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := p.Supplies(context.Background(), nil)
	if err != nil || len(all.EventKinds) != 2 || !all.Methods {
		t.Fatalf("default configuration: %+v, %v", all, err)
	}
	gp, err := p.Supplies(context.Background(), map[string]string{"admissions": "false"})
	if err != nil || len(gp.EventKinds) != 1 || gp.EventKinds[0] != formats.KindConsultation || gp.Methods {
		t.Fatalf("without admissions: %+v, %v", gp, err)
	}
	sum, err := p.Extract(context.Background(), sdk.Request{From: jan, To: jan, Config: map[string]string{"admissions": "false"}}, func(string, arrow.Record) error { return nil })
	if err != nil || len(sum.Supplies.EventKinds) != 1 {
		t.Fatalf("extract without admissions: %+v, %v", sum, err)
	}
	// The schema's typed keys cross the protocol.
	for _, k := range p.Describe().Config {
		if k.Name == "admissions" && (k.Type != sdk.TypeBool || k.Default != "true") {
			t.Errorf("key %+v lost its type or default", k)
		}
	}

	old, err := launch(t, "badrows", host.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := old.Supplies(context.Background(), map[string]string{"mode": "value"})
	if err != nil || len(s.RowKinds) != 2 || len(s.EventKinds) != 2 || !s.Methods {
		t.Fatalf("a plugin without supplies: %+v, %v; want its Describe's lists", s, err)
	}
}

// TestUnknownKeyRefusedBeforeThePluginsOwnCheck: the SDK applies the published schema, so a
// misspelt key is refused even though the plugin's own ValidateConfig does not look for one.
func TestUnknownKeyRefusedBeforeThePluginsOwnCheck(t *testing.T) {
	p, err := launch(t, "good", host.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = p.ValidateConfig(context.Background(), map[string]string{"rwos": "5"})
	if !errors.Is(err, sdk.ErrConfig) || !strings.Contains(err.Error(), "unknown key rwos (did you mean rows?)") {
		t.Fatalf("err = %v", err)
	}
	_, err = p.Extract(context.Background(), sdk.Request{From: jan, To: jan, Config: map[string]string{"admissions": "sometimes"}}, func(string, arrow.Record) error {
		t.Error("rows arrived for a refused configuration")
		return nil
	})
	if !errors.Is(err, sdk.ErrConfig) || !strings.Contains(err.Error(), "admissions must be true or false") {
		t.Fatalf("extract: err = %v", err)
	}
}
