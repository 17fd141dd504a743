// Package testplugins builds small plugin binaries that misbehave in one way each, for tests
// of the host and the conformance checker, and finds plugin processes left running.
//
// The binaries: good (a correct extractor), panics (panics in Extract), hangs (never returns
// from Extract, or never starts with TESTPLUGIN_HANG=start), oldproto (speaks protocol
// version 0), badrows (sends a batch that breaks the contract; config mode = type, missing,
// value, undeclared, unsupplied or huge) and crashes (exits with status 2 mid-stream).
package testplugins

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/tributary-health/tributary/formats"
	pluginv1 "github.com/tributary-health/tributary/plugins/proto/tributary/plugin/v1"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// Names of the test plugins, each a main package under this directory.
var Names = []string{"good", "panics", "hangs", "oldproto", "badrows", "crashes"}

const pkg = "github.com/tributary-health/tributary/plugins/internal/testplugins/"

// MarkerEnv names an environment variable: when set, good creates the file it names as soon
// as it starts, so a test can tell whether the binary ever ran.
const MarkerEnv = "TESTPLUGIN_STARTED_MARKER"

// Build compiles the named test plugins (all of them when none are named) into dir and
// returns their paths by name. Tests call it once, from TestMain.
func Build(ctx context.Context, dir string, names ...string) (map[string]string, error) {
	if len(names) == 0 {
		names = Names
	}
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	for _, n := range names {
		args = append(args, pkg+n)
	}
	return buildInto(ctx, dir, names, args)
}

// BuildPackage compiles one main package (an import path) into dir as name.
func BuildPackage(ctx context.Context, dir, name, importPath string) (string, error) {
	out := filepath.Join(dir, name+exe())
	paths, err := buildInto(ctx, dir, []string{name}, []string{"build", "-o", out, importPath})
	return paths[name], err
}

func buildInto(ctx context.Context, dir string, names []string, args []string) (map[string]string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	paths := make(map[string]string, len(names))
	for _, n := range names {
		paths[n] = filepath.Join(dir, n+exe())
	}
	return paths, nil
}

func exe() string {
	if runtime.GOOS == "windows" {
		return ".exe"
	}
	return ""
}

// Running returns the ids of live processes running the binary at path. It reads /proc, so
// on systems without it the answer is always empty.
func Running(path string) []int {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil {
			continue // exited, a zombie, or not ours to read
		}
		if strings.TrimSuffix(target, " (deleted)") == abs {
			pids = append(pids, pid)
		}
	}
	return pids
}

// WaitGone waits up to d for no process to be running path, and returns those still running.
func WaitGone(path string, d time.Duration) []int {
	deadline := time.Now().Add(d)
	for {
		pids := Running(path)
		if len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Description is what the test plugins say about themselves.
var Description = sdk.Description{
	Name:       "testplugin",
	Version:    "0.0.1",
	RowKinds:   []string{formats.RowRegistrations, formats.RowEvents},
	EventKinds: []string{formats.KindConsultation, formats.KindAdmission},
	Methods:    true,
	Config:     []sdk.ConfigKey{{Name: "rows", Type: sdk.TypeInt, Help: "how many patients to make up", Default: "10"}},
}

// Emit writes n made-up patients, each registered and with one consultation and one
// emergency admission in the first requested month.
func Emit(req sdk.Request, w *sdk.Writer, n int) error { return EmitWithout(req, w, n, "") }

// EmitWithout is Emit leaving out the events of one kind.
func EmitWithout(req sdk.Request, w *sdk.Writer, n int, without string) error {
	start := formats.DateOf(req.From.Start())
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("patient-%06d", i)
		if err := w.Registration(formats.Registration{PatientKey: key, Sex: formats.Sexes[i%3], BirthMonth: req.From - formats.Month(14+12*(i%90)), From: start - 400, To: formats.NoEnd}); err != nil {
			return err
		}
		if err := w.Event(formats.Event{PatientKey: key, Kind: formats.KindConsultation, Start: start + formats.Date(i%28), End: formats.NoEnd}); err != nil {
			return err
		}
		if without == formats.KindAdmission {
			continue
		}
		if err := w.Event(formats.Event{PatientKey: key, Kind: formats.KindAdmission, Start: start + 1, End: start + 3, Method: formats.MethodEmergency}); err != nil {
			return err
		}
	}
	return nil
}

// ServeRaw serves srv under protocol version, bypassing the SDK, for plugins that must break
// the rules the SDK enforces.
func ServeRaw(version int, srv pluginv1.ExtractorServer) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{version: {pluginv1.PluginName: &rawPlugin{srv: srv}}},
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           hclog.New(&hclog.LoggerOptions{Output: os.Stderr, JSONFormat: true}),
	})
}

// DescribeResponse is Description in protocol form.
func DescribeResponse() *pluginv1.DescribeResponse {
	return &pluginv1.DescribeResponse{
		Name: Description.Name, Version: Description.Version, ProtocolVersions: []int32{pluginv1.ProtocolVersion},
		RowKinds: Description.RowKinds, EventKinds: Description.EventKinds, Methods: true, Sdk: "raw",
	}
}

// TestMain builds every test plugin, and each extra main package (name to import path), into
// a temporary directory, sets *bins to their paths by name, runs the tests and exits. A test
// package's TestMain calls it.
func TestMain(m *testing.M, bins *map[string]string, extra map[string]string) {
	dir, err := os.MkdirTemp("", "testplugins")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	paths, err := Build(ctx, dir)
	for name, importPath := range extra {
		if err != nil {
			break
		}
		paths[name], err = BuildPackage(ctx, dir, name, importPath)
	}
	cancel()
	if err != nil {
		os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bins = paths
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
