//go:build unix

package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/internal/testenv"
)

// TestSIGTERMEndsPromptly: SIGTERM ends 'combine' in the middle of its work and 'serve'
// while it serves, each within seconds (the test gives up after 30 s, which only a hang
// reaches), with exit 1 and a message for the combine cut short.
func TestSIGTERMEndsPromptly(t *testing.T) {
	bin := testenv.Binary(t, "./coordinator/cmd/tributary-coordinator")
	dir := t.TempDir()
	st, err := objstore.NewDir(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	fed := fedgen.New(fedgen.Params{Practices: 60, Months: 36, Seed: 3, Start: formats.MonthFor(2021, 1)})
	if err := fed.Write(context.Background(), st, 2); err != nil {
		t.Fatal(err)
	}
	pubPEM, err := formats.MarshalPublicKey(fed.Coordinator.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "coordinator.pub")
	os.WriteFile(pub, pubPEM, 0o644)
	store := "file://" + filepath.ToSlash(filepath.Join(dir, "store"))
	ended := func(cmd *exec.Cmd) (time.Duration, error) {
		start := time.Now()
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			return time.Since(start), err
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%v did not end within 30 s of SIGTERM", cmd.Args[1])
		}
		return 0, nil
	}

	var errb strings.Builder
	combine := exec.Command(bin, "combine", "--store", store, "--key", pub)
	combine.Stderr = &errb
	if err := combine.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // into its reading of 60 practices' runs
	took, err := ended(combine)
	code := combine.ProcessState.ExitCode()
	t.Logf("combine ended %v after SIGTERM with exit %d: %s", took.Round(time.Millisecond), code, strings.TrimSpace(errb.String()))
	if err == nil && code == 0 {
		t.Log("the combine had finished before the signal; it still ended cleanly")
	} else if code != 1 || !strings.Contains(errb.String(), "stopped by a signal") {
		t.Errorf("a combine cut short: exit %d, %q; want exit 1 saying it was stopped", code, errb.String())
	}

	tokens := filepath.Join(dir, "tokens.json")
	if out, err := exec.Command(bin, "tokens", "add", "--file", tokens, "--name", "lead", "--role", "lead").CombinedOutput(); err != nil {
		t.Fatalf("tokens add: %v %s", err, out)
	}
	serve := exec.Command(bin, "serve", "--store", store, "--key", pub, "--tokens", tokens, "--listen", "127.0.0.1:0")
	out, err := serve.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || !strings.Contains(line, "serving") {
		t.Fatalf("serve did not start: %q %v", line, err)
	}
	time.Sleep(200 * time.Millisecond) // its first combine is under way
	if took, err := ended(serve); err != nil {
		t.Errorf("serve ended %v after SIGTERM with %v; want a clean exit", took, err)
	} else {
		t.Logf("serve ended %v after SIGTERM", took.Round(time.Millisecond))
	}
}
