// Package host is the agent's side of extractor plugins: it finds plugin binaries, verifies
// each against its pinned SHA-256 before it runs, launches it through go-plugin with mutual
// TLS, calls it with timeouts, checks every batch it sends against the formats contract, and
// kills it on every path out, so a plugin that crashes, hangs or misbehaves fails its run and
// nothing else.
package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pluginv1 "github.com/tributary-health/tributary/plugins/proto/tributary/plugin/v1"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// Defaults for Options fields left zero.
const (
	DefaultStartTimeout   = 30 * time.Second
	DefaultCallTimeout    = 30 * time.Second
	DefaultExtractTimeout = 2 * time.Hour
	// DefaultMaxDecodedBytes bounds the memory one batch may decode to. The SDK's batches
	// decode to about their encoded size (at most 1 MiB), so this only stops a hostile one.
	DefaultMaxDecodedBytes = 64 << 20
)

// Options configure one plugin launch. Only Path and SHA256 are required.
type Options struct {
	// Path of the plugin binary.
	Path string
	// SHA256 is the hex SHA-256 the binary must have, pinned in the agent's configuration.
	// A binary that does not match is refused before it runs.
	SHA256 string
	// Logger receives the host's messages and, named after the binary, the plugin's own
	// stderr. Nil discards them.
	Logger hclog.Logger
	// StartTimeout bounds the time from exec to the end of the handshake; the Describe that
	// follows is bounded by CallTimeout.
	StartTimeout time.Duration
	// CallTimeout bounds Describe and ValidateConfig.
	CallTimeout time.Duration
	// ExtractTimeout bounds a whole Extract. A plugin still running at the end is killed.
	ExtractTimeout time.Duration
	// MaxDecodedBytes bounds the memory one batch from the plugin may decode to.
	MaxDecodedBytes int64
	// Env adds "KEY=value" entries to the plugin's environment. The plugin does not inherit
	// the agent's environment (which may hold store credentials): it gets only PATH, HOME,
	// TMPDIR, TZ, LANG and, on Windows, what a process needs to start.
	Env []string
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.ExtractTimeout <= 0 {
		o.ExtractTimeout = DefaultExtractTimeout
	}
	if o.MaxDecodedBytes <= 0 {
		o.MaxDecodedBytes = DefaultMaxDecodedBytes
	}
}

// Description is what a plugin says about itself, with the protocol details the host checked.
type Description struct {
	sdk.Description
	ProtocolVersions []int
	SDK              string
}

// Plugin is one running plugin process. Its methods may be called from one goroutine at a
// time; Close may be called from any goroutine, at any time, more than once.
type Plugin struct {
	path   string
	opts   Options
	log    hclog.Logger
	client *plugin.Client
	cmd    *exec.Cmd
	rpc    pluginv1.ExtractorClient
	desc   Description
	stdout countingWriter

	closeOnce sync.Once
	closed    atomic.Bool
}

// Launch verifies the binary at opts.Path against opts.SHA256, starts it, completes the
// handshake (refusing a plugin for another protocol version) and asks it to Describe itself.
// On any error no plugin process is left running. The caller must Close the Plugin.
func Launch(ctx context.Context, opts Options) (*Plugin, error) {
	opts.setDefaults()
	path, err := filepath.Abs(opts.Path)
	if err != nil {
		return nil, &Error{Op: "plugin launch", Subject: opts.Path, Kind: ErrStart, Err: err}
	}
	want, err := pinnedSum(path, opts.SHA256)
	if err != nil {
		return nil, err
	}
	got, err := FileSHA256(path)
	if err != nil {
		return nil, &Error{Op: "plugin launch", Subject: path, Kind: ErrStart, Detail: "cannot read the binary", Err: err}
	}
	if hex.EncodeToString(want) != got {
		return nil, &Error{Op: "plugin launch", Subject: path, Kind: ErrChecksum, Detail: fmt.Sprintf(
			"expected sha256 %s, the file has %s; it was not started. If the plugin was upgraded on purpose, pin the new checksum in the agent configuration",
			hex.EncodeToString(want), got)}
	}

	p := &Plugin{path: path, opts: opts, log: opts.Logger.Named("plugin-host").With("plugin", filepath.Base(path))}
	p.cmd = exec.Command(path)
	p.cmd.Env = pluginEnv(opts.Env)
	p.cmd.Dir = filepath.Dir(path)
	configureCmd(p.cmd)
	p.client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: sdk.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{
			pluginv1.ProtocolVersion: {pluginv1.PluginName: &grpcPlugin{}},
		},
		Cmd:              p.cmd,
		SkipHostEnv:      true,
		SecureConfig:     &plugin.SecureConfig{Checksum: want, Hash: sha256.New()},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		StartTimeout:     opts.StartTimeout,
		Logger:           opts.Logger,
		SyncStdout:       &p.stdout,
		SyncStderr:       io.Discard,
		GRPCDialOptions: []grpc.DialOption{
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(pluginv1.MaxChunkBytes + 64<<10)),
		},
	})
	if err := p.start(ctx); err != nil {
		p.kill()
		return nil, err
	}
	return p, nil
}

// pinnedSum decodes the pinned checksum, telling the operator how to pin one when it is
// missing or malformed.
func pinnedSum(path, pinned string) ([]byte, error) {
	pinned = strings.ToLower(strings.TrimSpace(pinned))
	if pinned == "" {
		sum, err := FileSHA256(path)
		if err != nil {
			sum = "(unreadable: " + err.Error() + ")"
		}
		return nil, &Error{Op: "plugin launch", Subject: path, Kind: ErrNotPinned, Detail: fmt.Sprintf(
			"every plugin must be pinned by checksum; after checking the binary is the one you meant to install, set sha256 = %q for it in the agent configuration", sum)}
	}
	b, err := hex.DecodeString(pinned)
	if err != nil || len(b) != sha256.Size {
		return nil, &Error{Op: "plugin launch", Subject: path, Kind: ErrNotPinned, Detail: "the pinned sha256 must be 64 hexadecimal digits, as printed by sha256sum"}
	}
	return b, nil
}

// pluginEnv is the environment a plugin gets: enough to run, none of the agent's secrets.
func pluginEnv(extra []string) []string {
	keep := []string{"PATH", "HOME", "TMPDIR", "TZ", "LANG"}
	if runtime.GOOS == "windows" {
		keep = append(keep, "SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "TEMP", "TMP", "USERPROFILE", "LOCALAPPDATA", "PROGRAMDATA", "COMSPEC", "PATHEXT")
	}
	var env []string
	for _, k := range keep {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, extra...)
}

func (p *Plugin) start(ctx context.Context) error {
	type result struct {
		rpc pluginv1.ExtractorClient
		err error
	}
	// go-plugin's start takes no context; run it aside so ctx can still end the wait. The
	// goroutine ends when Client returns, which StartTimeout bounds.
	done := make(chan result, 1)
	go func() {
		cp, err := p.client.Client()
		if err != nil {
			done <- result{err: err}
			return
		}
		raw, err := cp.Dispense(pluginv1.PluginName)
		if err != nil {
			done <- result{err: err}
			return
		}
		rpc, ok := raw.(pluginv1.ExtractorClient)
		if !ok {
			done <- result{err: fmt.Errorf("dispensed %T, not an extractor client", raw)}
			return
		}
		done <- result{rpc: rpc}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		// The start may still be under way; wait for it (StartTimeout bounds it) so the
		// process, if it started, is killed rather than left behind.
		<-done
		return &Error{Op: "plugin launch", Subject: p.path, Kind: ErrStart, Err: ctx.Err()}
	}
	if r.err != nil {
		return p.startError(r.err)
	}
	p.rpc = r.rpc

	cctx, cancel := context.WithTimeout(ctx, p.opts.CallTimeout)
	defer cancel()
	resp, err := p.rpc.Describe(cctx, &pluginv1.DescribeRequest{})
	if err != nil {
		return p.callError(cctx, "describe", err)
	}
	desc, err := describeFromProto(resp)
	if err != nil {
		return &Error{Op: "plugin describe", Subject: p.path, Kind: ErrContract, Err: err}
	}
	p.desc = desc
	p.log = p.log.With("extractor", desc.Name, "version", desc.Version)
	p.log.Info("plugin started", "sdk", desc.SDK)
	return nil
}

var pluginVersionRE = regexp.MustCompile(`Plugin version: (-?\d+)`)

// startError turns go-plugin's start errors, which are written for go-plugin's own developers,
// into sentences for the people who install plugins.
func (p *Plugin) startError(err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, plugin.ErrChecksumsDoNotMatch):
		return &Error{Op: "plugin launch", Subject: p.path, Kind: ErrChecksum, Detail: "the binary changed after it was checked; it was not started. Check who is replacing it, then pin the new checksum"}
	case strings.Contains(msg, "incompatible API version"):
		theirs := "another"
		if m := pluginVersionRE.FindStringSubmatch(msg); m != nil {
			theirs = m[1]
		}
		return &Error{Op: "plugin launch", Subject: p.path, Kind: ErrProtocol, Detail: fmt.Sprintf(
			"the plugin speaks extractor protocol version %s, this agent speaks version %d; rebuild the plugin with an SDK for protocol %d, or run an agent that supports protocol %s",
			theirs, pluginv1.ProtocolVersion, pluginv1.ProtocolVersion, theirs)}
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		return &Error{Op: "plugin launch", Subject: p.path, Kind: ErrTimeout, Detail: fmt.Sprintf(
			"no handshake within %s; it was killed. Is it a Tributary extractor that calls sdk.Serve?", p.opts.StartTimeout)}
	case strings.Contains(msg, "Unrecognized remote plugin message"):
		// go-plugin quotes the line, which could hold anything: never repeat it.
		return &Error{Op: "plugin launch", Subject: p.path, Kind: ErrStart, Detail: "the binary wrote something other than the go-plugin handshake to stdout (not shown); is it a Tributary extractor that calls sdk.Serve, and does it print nothing to stdout itself?"}
	case strings.Contains(msg, "exited before we could connect"):
		return &Error{Op: "plugin launch", Subject: p.path, Kind: ErrStart, Detail: "it exited before the handshake" + p.exitStatus() + "; is it a Tributary extractor that calls sdk.Serve? Its stderr is in the agent log"}
	}
	return &Error{Op: "plugin launch", Subject: p.path, Kind: ErrStart, Err: err}
}

// Describe returns what the plugin said about itself at launch.
func (p *Plugin) Describe() Description { return p.desc }

// Path is the plugin binary's absolute path.
func (p *Plugin) Path() string { return p.path }

// StdoutBytes is the number of bytes the plugin wrote to stdout after the handshake. They are
// discarded: a plugin must log to stderr.
func (p *Plugin) StdoutBytes() int64 { return p.stdout.n.Load() }

// Exited reports whether the plugin process has ended.
func (p *Plugin) Exited() bool { return p.client.Exited() }

// ValidateConfig asks the plugin to check config without extracting anything. A rejected
// configuration is an error of kind sdk.ErrConfig whose text is the plugin's explanation.
func (p *Plugin) ValidateConfig(ctx context.Context, config map[string]string) error {
	_, err := p.Supplies(ctx, config)
	return err
}

// Supplies asks the plugin to check config, as ValidateConfig does, and returns what it
// supplies with that configuration: never more than its Describe lists, and exactly Describe's
// lists from a plugin built before plugins could say (one that sends no supplies). A measure
// whose rows are not supplied must be left out of the practice's figures, not counted as zero.
func (p *Plugin) Supplies(ctx context.Context, config map[string]string) (sdk.Supplies, error) {
	const op = "validate config"
	if p.closed.Load() {
		return sdk.Supplies{}, &Error{Op: "plugin " + op, Subject: p.path, Kind: ErrClosed}
	}
	cctx, cancel := context.WithTimeout(ctx, p.opts.CallTimeout)
	defer cancel()
	resp, err := p.rpc.ValidateConfig(cctx, &pluginv1.ValidateConfigRequest{Config: config})
	if err != nil {
		return sdk.Supplies{}, p.callError(cctx, op, err)
	}
	if len(resp.GetErrors()) > 0 {
		return sdk.Supplies{}, &Error{Op: "plugin " + op, Subject: p.path, Kind: ErrPlugin, Detail: strings.Join(resp.GetErrors(), "; "), Err: silent{sdk.ErrConfig}}
	}
	all := p.desc.Supplies()
	s := resp.GetSupplies()
	if s == nil {
		return all.Clean(), nil
	}
	got := sdk.Supplies{RowKinds: s.GetRowKinds(), EventKinds: s.GetEventKinds(), Methods: s.GetMethods(),
		Diagnoses: s.GetDiagnoses(), Discharges: s.GetDischarges()}
	if err := got.CheckWithin(all); err != nil {
		return sdk.Supplies{}, &Error{Op: "plugin " + op, Subject: p.path, Kind: ErrContract, Detail: "what it says it supplies with this configuration is more than its Describe lists; build it with the current SDK", Err: err}
	}
	return got.Clean(), nil
}

// Close stops the plugin: gracefully when it answers, by killing it otherwise. When Close
// returns the process has exited.
func (p *Plugin) Close() error {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		p.client.Kill()
		if n := p.StdoutBytes(); n > 0 {
			p.log.Warn("plugin wrote to stdout; the output was discarded. Plugins must log to stderr through the SDK", "bytes", n)
		}
	})
	return nil
}

// kill ends the process at once, for a plugin that timed out or can no longer be trusted,
// then lets go-plugin clean up.
func (p *Plugin) kill() {
	p.closed.Store(true)
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
	p.closeOnce.Do(func() { p.client.Kill() })
}

// exitStatus describes how the process ended, once it has; go-plugin's Exited takes the lock
// its waiter releases after setting ProcessState, so reading it afterwards is safe.
func (p *Plugin) exitStatus() string {
	deadline := time.Now().Add(2 * time.Second)
	for !p.client.Exited() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !p.client.Exited() || p.cmd.ProcessState == nil {
		return ""
	}
	return " (" + p.cmd.ProcessState.String() + ")"
}

type countingWriter struct{ n atomic.Int64 }

func (w *countingWriter) Write(b []byte) (int, error) {
	w.n.Add(int64(len(b)))
	return len(b), nil
}

// FileSHA256 returns the hex SHA-256 of the file at path, as sha256sum prints it.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
