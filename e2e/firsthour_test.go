package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/internal/miniotest"
	"github.com/tributary-health/tributary/internal/testenv"
	"github.com/tributary-health/tributary/plugins/host"
)

// cmdResult is what a built binary did.
type cmdResult struct {
	code        int
	out, stderr string
}

// runBuilt runs bin in dir with the environment cleared of store settings, then env.
func runBuilt(t *testing.T, dir string, env []string, bin string, args ...string) cmdResult {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return cmdResult{0, out.String(), errb.String()}
	case errors.As(err, &exit):
		return cmdResult{exit.ExitCode(), out.String(), errb.String()}
	}
	t.Fatalf("%s %v: %v", bin, args, err)
	return cmdResult{}
}

// cleanEnv is this process's environment without any store credentials or store URL, as on
// a fresh machine.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "TRIBUTARY_STORE", "TRIBUTARY_S3_ACCESS_KEY", "TRIBUTARY_S3_SECRET_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
			"TRIBUTARY_ADMIN_ACCESS_KEY", "TRIBUTARY_ADMIN_SECRET_KEY":
		default:
			env = append(env, kv)
		}
	}
	return env
}

// TestFirstHourOnMinIO follows the docs on a real MinIO server, as a federation lead and a
// practice manager would in their first hour, with the built binaries: a plain-HTTP server
// named without insecure=true, a bucket not made yet, the store keys file sourced by hand
// ('. store.env'), a token for a practice that is not registered, a wrong secret, and what
// status and releases say at each step.
func TestFirstHourOnMinIO(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := miniotest.Bucket(t) // not made: the lead's first provision finds no bucket
	agent := testenv.Binary(t, "./agent/cmd/tributary-agent")
	coord := testenv.Binary(t, "./coordinator/cmd/tributary-coordinator")
	good := testenv.Binary(t, "./plugins/internal/testplugins/good")
	dir := t.TempDir()
	url := srv.URL(bucket)
	if !strings.HasSuffix(url, "&insecure=true") {
		t.Skipf("the test server speaks TLS (%s); this test is about a plain-HTTP one", url)
	}
	admin := []string{"TRIBUTARY_ADMIN_ACCESS_KEY=" + srv.AccessKey, "TRIBUTARY_ADMIN_SECRET_KEY=" + srv.SecretKey}
	must := func(r cmdResult, what string) cmdResult {
		t.Helper()
		if r.code != 0 {
			t.Fatalf("%s: exit %d\n%s\n%s", what, r.code, r.out, r.stderr)
		}
		return r
	}

	// The lead forgets insecure=true for a plain-HTTP MinIO: the message names it.
	plain := strings.TrimSuffix(url, "&insecure=true")
	if r := runBuilt(t, dir, admin, coord, "practice", "provision", "--admin-url", plain, "--practice", "A81001", "--out", "-"); r.code != 1 || !strings.Contains(r.stderr, "insecure=true") {
		t.Errorf("provision on a plain-HTTP server without insecure=true: exit %d, %s", r.code, r.stderr)
	}
	// No bucket yet: provision says so, offers --create-bucket, and makes no user.
	aEnv := filepath.Join(dir, "A81001.env")
	r := runBuilt(t, dir, admin, coord, "practice", "provision", "--admin-url", url, "--practice", "A81001", "--out", aEnv)
	if r.code != 1 || !strings.Contains(r.stderr, "does not exist") || !strings.Contains(r.stderr, "--create-bucket") || !strings.Contains(r.stderr, "mc mb") {
		t.Errorf("provision without the bucket: exit %d, %s", r.code, r.stderr)
	}
	if _, err := os.Stat(aEnv); err == nil {
		t.Error("provision without the bucket wrote a keys file")
	}
	if r := runBuilt(t, dir, admin, coord, "practice", "users", "--admin-url", url, "--practice", "A81001"); r.code != 0 || strings.TrimSpace(r.out) != "" {
		t.Errorf("provision without the bucket left users: %q %s", r.out, r.stderr)
	}
	r = must(runBuilt(t, dir, admin, coord, "practice", "provision", "--admin-url", url, "--practice", "A81001", "--out", aEnv, "--create-bucket"), "provision --create-bucket")
	if !strings.Contains(r.stderr, "made bucket "+bucket) {
		t.Errorf("provision --create-bucket does not say it made the bucket: %s", r.stderr)
	}
	coordEnvFile := filepath.Join(dir, "coordinator.env")
	must(runBuilt(t, dir, admin, coord, "coordinator-user", "provision", "--admin-url", url, "--out", coordEnvFile), "coordinator-user provision")
	coordEnv := envOf(t, coordEnvFile)

	// Keys: the practice's key id is printed by keys init and by the lead's registry add.
	must(runBuilt(t, dir, nil, coord, "keys", "init", "--out", "lead"), "coordinator keys init")
	r = must(runBuilt(t, dir, nil, agent, "keys", "init", "--out", "keys"), "agent keys init")
	m := regexp.MustCompile(`key id:\s+(\S+)`).FindStringSubmatch(r.out)
	if m == nil {
		t.Fatalf("keys init prints no key id:\n%s", r.out)
	}
	r = must(runBuilt(t, dir, coordEnv, coord, "registry", "add", "--store", url, "--key", "lead/coordinator.key",
		"--practice", "A81001", "--name", "Riverside", "--public-key", "keys/practice.pub"), "registry add")
	if !strings.Contains(r.out, "with key "+m[1]) {
		t.Errorf("keys init printed key id %s; registry add says:\n%s", m[1], r.out)
	}

	// Tokens: a practice the registry does not name is refused when the registry can be read.
	tokens := []string{"tokens", "add", "--file", "tokens.json", "--name", "x", "--role", "practice"}
	if r := runBuilt(t, dir, coordEnv, coord, append(tokens, "--practice", "ZZZ999", "--store", url, "--coordinator-pub", "lead/coordinator.pub")...); r.code != 1 || !strings.Contains(r.stderr, "not in the federation's registry") {
		t.Errorf("tokens add for an unregistered practice: exit %d, %s", r.code, r.stderr)
	}
	if r := runBuilt(t, dir, coordEnv, coord, append(tokens, "--practice", "A81001", "--store", url, "--coordinator-pub", "lead/coordinator.pub")...); r.code != 0 || !strings.HasPrefix(r.out, "trib_") || strings.Contains(r.stderr, "could not check") {
		t.Errorf("tokens add for a registered practice: exit %d, %s", r.code, r.stderr)
	}
	if r := runBuilt(t, dir, nil, coord, append(tokens, "--practice", "A81001")...); r.code != 0 || !strings.Contains(r.stderr, "could not check") {
		t.Errorf("tokens add with no registry to read: exit %d, %s", r.code, r.stderr)
	}

	// The practice: a configuration with the store but no keys in it; the keys file is
	// sourced by hand before run --once, as deploy/practice-credentials.md says.
	sum, err := host.FileSHA256(good)
	if err != nil {
		t.Fatal(err)
	}
	cfg := func(name, store string) string {
		text := fmt.Sprintf("practice = \"A81001\"\nkey_file = \"keys/practice.key\"\nstore = %q\nspool = \"spool\"\nlisten = \"off\"\n[months]\nfrom = \"2024-01\"\nto = \"2024-02\"\n[[plugins]]\nname = \"good\"\npath = %q\nsha256 = %q\n", store, good, sum)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return name
	}
	agentCfg := cfg("agent.toml", url)
	if r := runBuilt(t, dir, nil, agent, "run", "--once", "--config", agentCfg); r.code != 1 || !strings.Contains(r.stderr, "store.env") {
		t.Errorf("run --once without the store keys: exit %d; want it to say how to give them:\n%s", r.code, r.stderr)
	}
	sh := func(script string) cmdResult {
		return runBuilt(t, dir, []string{"AGENT=" + agent, "CFG=" + agentCfg}, "/bin/sh", "-c", script)
	}
	r = sh(`. ./A81001.env && exec "$AGENT" run --once --config "$CFG"`)
	if r.code != 0 || !strings.Contains(r.out, "1 run(s), 2 object(s)") {
		t.Fatalf("run --once with the sourced keys file: exit %d\n%s\n%s", r.code, r.out, r.stderr)
	}
	r = sh(`. ./A81001.env && exec "$AGENT" status --config "$CFG"`)
	if r.code != 0 || !strings.Contains(r.out, "Last sent:") || !strings.Contains(r.out, "Nothing to do") {
		t.Errorf("status after a clean one-off run: exit %d (want 0)\n%s%s", r.code, r.out, r.stderr)
	}
	firstRun := regexp.MustCompile(`Last sent: .*\(run (\S+)\)`).FindStringSubmatch(r.out)
	r = runBuilt(t, dir, nil, agent, "releases", "--config", agentCfg)
	wantStore := fmt.Sprintf("Store: bucket %s on %s (plain HTTP)", bucket, srv.Endpoint())
	if r.code != 0 || !strings.Contains(r.out, wantStore) || strings.Contains(r.out, "s3://") || strings.Contains(r.out, "endpoint=") || strings.Count(r.out, "practices/A81001/runs/") != 2 {
		t.Errorf("releases: want %q above bare keys:\n%s", wantStore, r.out)
	}

	// A wrong secret: the store denies access, and status says so and what to do.
	r = runBuilt(t, dir, []string{"TRIBUTARY_S3_ACCESS_KEY=" + envValue(t, aEnv, "TRIBUTARY_S3_ACCESS_KEY"), "TRIBUTARY_S3_SECRET_KEY=wrong-secret"}, agent, "run", "--once", "--config", agentCfg)
	if r.code != 1 || !strings.Contains(r.stderr, "access denied") {
		t.Errorf("run --once with a wrong secret: exit %d\n%s", r.code, r.stderr)
	}
	r = runBuilt(t, dir, nil, agent, "status", "--config", agentCfg)
	if r.code != 3 || !strings.Contains(r.out, "access denied") || strings.Contains(r.out, "could not be reached") || !strings.Contains(r.out, "TRIBUTARY_S3_SECRET_KEY") {
		t.Errorf("status after access was denied: exit %d (want 3)\n%s", r.code, r.out)
	}
	if firstRun == nil || !strings.Contains(r.out, "(run "+firstRun[1]+")") {
		t.Errorf("status after access was denied must name the run that was sent (%v) as last sent:\n%s", firstRun, r.out)
	}

	// The agent pointed at the plain-HTTP server without insecure=true names it too.
	r = sh(`. ./A81001.env && exec "$AGENT" run --once --config ` + cfg("tls.toml", plain))
	if r.code != 1 || !strings.Contains(r.stderr, "insecure=true") {
		t.Errorf("run --once on a plain-HTTP server without insecure=true: exit %d\n%s", r.code, r.stderr)
	}
}

// envOf reads a keys file written by provision as environment assignments.
func envOf(t *testing.T, path string) []string {
	t.Helper()
	return []string{
		"TRIBUTARY_S3_ACCESS_KEY=" + envValue(t, path, "TRIBUTARY_S3_ACCESS_KEY"),
		"TRIBUTARY_S3_SECRET_KEY=" + envValue(t, path, "TRIBUTARY_S3_SECRET_KEY"),
	}
}

func envValue(t *testing.T, path, key string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+"="); ok {
			return v
		}
	}
	t.Fatalf("%s has no %s", path, key)
	return ""
}
