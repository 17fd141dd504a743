// Package miniotest runs a real MinIO server for tests: its own process on a free loopback
// port with throw-away data, stopped when the test ends.
//
// The server binary is $TRIBUTARY_MINIO_BIN, else the one `bash .ci/minio.sh install`
// builds into the user's cache. Without it, tests that need MinIO skip, or fail when CI=true.
package miniotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tributary-health/tributary/internal/objstore"
)

// Version is the MinIO server release the project tests against; .ci/minio.sh installs the
// same one.
const Version = "v0.0.0-20260212201848-7aac2a2c5b7c"

// Environment variables this package reads.
const (
	EnvBin       = "TRIBUTARY_MINIO_BIN"
	EnvEndpoint  = "TRIBUTARY_TEST_S3_ENDPOINT" // a server already running (set by .ci/test)
	EnvAccessKey = "TRIBUTARY_TEST_S3_ACCESS_KEY"
	EnvSecretKey = "TRIBUTARY_TEST_S3_SECRET_KEY"
)

// Server is a MinIO server for tests.
type Server struct {
	AccessKey string
	SecretKey string
	CAFile    string // the PEM certificate authority of a StartTLS server; "" for plain HTTP

	endpoint string // 127.0.0.1:port
	external bool   // not ours to stop or start
	bin      string
	dataDir  string
	logPath  string
	certsDir string     // TLS certificate and key, for StartTLS
	t        testing.TB // the owning test, for Stop and Start; nil for the shared server

	mu   sync.Mutex
	proc *process // nil while stopped
}

// Start launches a server owned by t, killed when t ends. It skips t (or fails it when
// CI=true) if no MinIO binary is installed.
func Start(t testing.TB) *Server {
	t.Helper()
	s := newServer(binary(t), t.TempDir())
	s.t = t
	t.Cleanup(s.kill)
	if err := s.launchOnFreePort(); err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	return s
}

// newServer describes a server with new credentials keeping its files in dir.
func newServer(bin, dir string) *Server {
	return &Server{
		AccessKey: "test-" + randomHex(6),
		SecretKey: randomHex(20),
		bin:       bin,
		dataDir:   filepath.Join(dir, "data"),
		logPath:   filepath.Join(dir, "minio.log"),
	}
}

var shared struct {
	once sync.Once
	s    *Server
	err  error
	skip string
}

// Shared returns one server for the whole test binary, so tests that only need a store do
// not each pay for a server start: the one named by TRIBUTARY_TEST_S3_ENDPOINT (with
// _ACCESS_KEY and _SECRET_KEY) when set, else one this package starts on first use. Tests
// sharing it must use their own buckets (Store with bucket "" makes a fresh one) and must not
// Stop it.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.once.Do(func() {
		if ep := os.Getenv(EnvEndpoint); ep != "" {
			shared.s = &Server{endpoint: ep, external: true, AccessKey: os.Getenv(EnvAccessKey), SecretKey: os.Getenv(EnvSecretKey)}
			if shared.s.AccessKey == "" || shared.s.SecretKey == "" {
				shared.err = fmt.Errorf("%s is set but %s or %s is not", EnvEndpoint, EnvAccessKey, EnvSecretKey)
			}
			return
		}
		bin, msg := findBinary()
		if msg != "" {
			shared.skip = msg
			return
		}
		sweepStale()
		dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", sharedDirPrefix, os.Getpid()))
		if err != nil {
			shared.err = err
			return
		}
		s := newServer(bin, dir)
		// No test owns it: it lives until the test binary exits, which takes it down too
		// (see procAttr); sweepStale removes its data on a later run.
		if err := s.launchOnFreePort(); err != nil {
			os.RemoveAll(dir)
			shared.err = err
			return
		}
		shared.s = s
	})
	switch {
	case shared.skip != "":
		missing(t, shared.skip)
	case shared.err != nil:
		t.Fatalf("miniotest: shared server: %v", shared.err)
	}
	return shared.s
}

// sharedDirPrefix starts the temporary directory names of shared servers, followed by the
// owning process id.
const sharedDirPrefix = "tributary-miniotest-"

// sweepStale removes the data of shared servers whose test binary has exited.
func sweepStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), sharedDirPrefix+"*"))
	for _, d := range dirs {
		rest := strings.TrimPrefix(filepath.Base(d), sharedDirPrefix)
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err == nil && pid != os.Getpid() && !processAlive(pid) {
			os.RemoveAll(d)
		}
	}
}

// Endpoint is the server's host:port.
func (s *Server) Endpoint() string { return s.endpoint }

// URL is an objstore URL for bucket on this server.
func (s *Server) URL(bucket string) string {
	if s.CAFile != "" {
		return "s3://" + bucket + "?endpoint=" + s.endpoint + "&ca=" + url.QueryEscape(s.CAFile)
	}
	return "s3://" + bucket + "?endpoint=" + s.endpoint + "&insecure=true"
}

// Store opens bucket on this server, creating the bucket if needed; bucket "" makes a new
// bucket named after t.
func (s *Server) Store(t testing.TB, bucket string) objstore.Store {
	t.Helper()
	if bucket == "" {
		bucket = Bucket(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := objstore.Open(ctx, s.URL(bucket), objstore.Options{AccessKey: s.AccessKey, SecretKey: s.SecretKey, CreateBucket: true})
	if err != nil {
		t.Fatalf("miniotest: open bucket %s: %v", bucket, err)
	}
	return st
}

// Bucket returns a new valid bucket name made from t's name.
func Bucket(t testing.TB) string {
	var b strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > 48 {
		name = strings.Trim(name[:48], "-")
	}
	if name == "" {
		name = "test"
	}
	return name + "-" + randomHex(6)
}

// Stop stops the server (SIGTERM, then a kill if it has not exited in 10 s), for outage
// tests. Start brings it back on the same port with the same data.
func (s *Server) Stop() {
	s.owned("Stop")
	s.kill()
}

// Start restarts a stopped server on the same port with the same data.
func (s *Server) Start() {
	s.owned("Start")
	s.mu.Lock()
	running := s.proc != nil
	s.mu.Unlock()
	if running {
		return
	}
	// The port was ours a moment ago, but another process may bind it before the server
	// does; try for a while before giving up.
	var err error
	for range 5 {
		if err = s.launch(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("miniotest: restart on %s: %v", s.endpoint, err)
}

func (s *Server) owned(what string) {
	if s.t == nil {
		panic("miniotest: " + what + " on a shared server, which other tests are using; use miniotest.Start for a server of your own")
	}
	s.t.Helper()
}

func (s *Server) kill() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		p.stop(10 * time.Second)
	}
}

func (s *Server) launchOnFreePort() error {
	var err error
	for range 3 {
		s.endpoint, err = freePort()
		if err != nil {
			return err
		}
		if err = s.launch(); err == nil {
			return nil
		}
	}
	return err
}

// launch starts the process and waits until it serves requests.
func (s *Server) launch() error {
	if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own copy
	args := []string{"server", "--quiet", "--address", s.endpoint}
	if s.certsDir != "" {
		args = append(args, "--certs-dir", s.certsDir)
	}
	cmd := exec.Command(s.bin, append(args, s.dataDir)...)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=on",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = procAttr()
	p, err := startProcess(cmd)
	if err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	if err := s.waitReady(p, 60*time.Second); err != nil {
		p.stop(5 * time.Second)
		return fmt.Errorf("MinIO on %s did not become ready: %w\n%s", s.endpoint, err, s.logTail())
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// waitReady polls the health checks, then the S3 API itself, which answers 503 for a moment
// after the health checks pass.
func (s *Server) waitReady(p *process, limit time.Duration) error {
	client, scheme, err := s.healthClient()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(limit)
	checks := []struct {
		path string
		ok   func(status int) bool
	}{
		{"/minio/health/live", func(c int) bool { return c == http.StatusOK }},
		{"/minio/health/ready", func(c int) bool { return c == http.StatusOK }},
		{"/minio/health/cluster", func(c int) bool { return c == http.StatusOK }},
		{"/", func(c int) bool { return c == http.StatusForbidden }}, // anonymous ListBuckets
	}
	for _, check := range checks {
		for {
			resp, err := client.Get(scheme + "://" + s.endpoint + check.path)
			if err == nil {
				resp.Body.Close()
				if check.ok(resp.StatusCode) {
					break
				}
			}
			select {
			case <-p.done:
				return fmt.Errorf("the server exited: %v", p.err)
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not ready after %v", check.path, limit)
			}
		}
	}
	return nil
}

func (s *Server) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "MinIO log (" + s.logPath + "):\n" + string(b)
}

// process is a child whose Wait runs in a goroutine locked to the thread that started it: on
// Linux the child is killed when that thread exits (Pdeathsig), so the thread must outlive it.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the child has exited
	err  error         // Wait's result, set before done closes
}

func startProcess(cmd *exec.Cmd) (*process, error) {
	p := &process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer close(p.done)
		if err := cmd.Start(); err != nil {
			p.err = err
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

func (p *process) stop(grace time.Duration) {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err == nil {
		select {
		case <-p.done:
			return
		case <-time.After(grace):
		}
	}
	p.cmd.Process.Kill()
	<-p.done
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// DefaultBin is where .ci/minio.sh install puts the server binary.
func DefaultBin() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	name := "minio"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	return filepath.Join(home, ".cache", "tributary", "minio-"+Version, name), nil
}

// findBinary returns the server binary, or why there is none.
func findBinary() (bin, missing string) {
	bin = os.Getenv(EnvBin)
	if bin == "" {
		var err error
		if bin, err = DefaultBin(); err != nil {
			return "", "no MinIO server binary: " + err.Error() + "; set " + EnvBin + " or run `bash .ci/minio.sh install`"
		}
	}
	fi, err := os.Stat(bin)
	if err != nil || fi.IsDir() {
		return "", "no MinIO server binary at " + bin + ": run `bash .ci/minio.sh install` (or set " + EnvBin + ")"
	}
	return bin, ""
}

func binary(t testing.TB) string {
	t.Helper()
	bin, msg := findBinary()
	if msg != "" {
		missing(t, msg)
	}
	return bin
}

// missing skips t, or fails it in CI, where a missing server would hide every S3 test.
func missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal("miniotest: " + msg)
	}
	t.Skip("miniotest: " + msg)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}
