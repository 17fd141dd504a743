package testenv

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"testing"

	"github.com/creack/pty"
)

// OpenPTY opens a pseudo-terminal, closed when the test ends: what is written to tty is read
// from ptmx, and tty is a terminal as stderr is at a person's shell. It skips where there are
// no pseudo-terminals.
func OpenPTY(t testing.TB) (ptmx, tty *os.File) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if errors.Is(err, pty.ErrUnsupported) {
		t.Skip("no pseudo-terminals here")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ptmx.Close(); tty.Close() })
	return ptmx, tty
}

// Run runs bin with stdout and stderr piped and returns its exit code, stdout and stderr. env
// is added to the test's environment.
func Run(t testing.TB, env []string, bin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), env...)
	return exitCode(t, cmd.Run(), bin, args), out.String(), errb.String()
}

// RunWithTerminalStderr runs bin with stdout to a pipe and stderr to a pseudo-terminal, as at
// a person's shell with the figures piped on, and returns its exit code, stdout and what the
// terminal showed. env is added to the test's environment. It skips where there are no
// pseudo-terminals.
func RunWithTerminalStderr(t testing.TB, env []string, bin string, args ...string) (int, string, string) {
	t.Helper()
	ptmx, tty := OpenPTY(t)
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, tty
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close() // the child holds its own copy; reading ends when it exits
	var screen bytes.Buffer
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(&screen, ptmx) // ends with EIO once the child has gone
		close(copied)
	}()
	err := cmd.Wait()
	<-copied
	return exitCode(t, err, bin, args), out.String(), screen.String()
}

// exitCode is the exit code of a command that ran and ended with err; a command that could
// not run fails the test.
func exitCode(t testing.TB, err error, bin string, args []string) int {
	t.Helper()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	}
	t.Fatalf("%s %v: %v", bin, args, err)
	return 0
}
