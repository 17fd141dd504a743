package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// temps lists the temporary files in dir.
func temps(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if IsTemp(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := Write(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := read(t, path); got != "two" {
		t.Errorf("content %q, want %q", got, "two")
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("permission %v, want none for group and others", fi.Mode().Perm())
		}
	}
	if left := temps(t, dir); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if err := Write(filepath.Join(dir, "missing", "x"), nil, 0o600); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Write into a missing folder = %v, want fs.ErrNotExist", err)
	}
	if err := Write(filepath.Join(dir, tempName("x")), nil, 0o600); err == nil {
		t.Error("Write accepted a temporary file's name as its target")
	}
}

// TestFailedWriteKeepsOldContent: a write that fails at any step (a full disk, a failing
// device) leaves the old content, or no file where there was none, and no temporary file.
func TestFailedWriteKeepsOldContent(t *testing.T) {
	for _, step := range []string{"write", "sync", "close", "rename"} {
		for _, existed := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/existed=%v", step, existed), func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "tokens.json")
				if existed {
					if err := Write(path, []byte("old"), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				full := errors.New("no space left on device")
				hook = func(s string, f *os.File) error {
					if s != step {
						return nil
					}
					if f != nil {
						f.Write([]byte("half of the ne")) // what reached the disk before it filled
					}
					return full
				}
				defer func() { hook = nil }()
				if err := Write(path, []byte("new content"), 0o600); !errors.Is(err, full) {
					t.Fatalf("Write = %v, want the failure", err)
				}
				if existed {
					if got := read(t, path); got != "old" {
						t.Errorf("after a failed write the file holds %q, want the old content", got)
					}
				} else if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("after a failed first write the file exists (%v)", err)
				}
				if left := temps(t, dir); len(left) != 0 {
					t.Errorf("a failed write left temporary files: %v", left)
				}
			})
		}
	}
}

// The crash tests run this test binary as a child that writes and dies.
const (
	envChild = "ATOMICFILE_TEST_CHILD"
	envPath  = "ATOMICFILE_TEST_PATH"
)

func TestMain(m *testing.M) {
	switch os.Getenv(envChild) {
	case "":
		os.Exit(m.Run())
	case "die-mid-write":
		// The process dies with half the new content in the temporary file, as at a power cut.
		hook = func(step string, f *os.File) error {
			if step == "write" {
				f.Write([]byte("partial"))
				f.Sync()
				os.Exit(3)
			}
			return nil
		}
		Write(os.Getenv(envPath), []byte("partial and then the rest"), 0o600)
		os.Exit(4) // not reached
	case "write-forever":
		a, b := bytes.Repeat([]byte("a"), 1<<20), bytes.Repeat([]byte("b"), 1<<20)
		for i := 0; ; i++ {
			data := a
			if i%2 == 1 {
				data = b
			}
			if err := Write(os.Getenv(envPath), data, 0o600); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(5)
			}
		}
	}
	os.Exit(6)
}

func child(t *testing.T, mode, path string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+mode, envPath+"="+path)
	cmd.Stderr = os.Stderr
	return cmd
}

// TestCrashMidWrite: a process that dies while writing leaves the old content in place and
// a partial temporary file beside it, which Clean removes at the next open.
func TestCrashMidWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := Write(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := child(t, "die-mid-write", path).Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("the child ended with %v, want exit status 3 (died mid-write)", err)
	}
	if got := read(t, path); got != "old" {
		t.Errorf("after a crash mid-write the file holds %q, want the old content", got)
	}
	left := temps(t, dir)
	if len(left) != 1 || read(t, filepath.Join(dir, left[0])) != "partial" {
		t.Fatalf("after the crash: temporary files %v, want one holding the partial content", left)
	}
	// A writer that may share the folder keeps a recent temporary file: it may be live.
	if err := Clean(path, time.Hour); err != nil {
		t.Fatal(err)
	}
	if len(temps(t, dir)) != 1 {
		t.Error("Clean with a margin removed a temporary file written moments ago")
	}
	if err := Clean(path, 0); err != nil {
		t.Fatal(err)
	}
	if left := temps(t, dir); len(left) != 0 {
		t.Errorf("Clean left %v", left)
	}
	if got := read(t, path); got != "old" {
		t.Errorf("Clean changed the file to %q", got)
	}
}

// TestKilledWriterLeavesOldOrNew kills a process that replaces a 1 MiB file over and over
// at random moments: the file is always whole, one content or the other.
func TestKilledWriterLeavesOldOrNew(t *testing.T) {
	if testing.Short() {
		t.Skip("kills 20 processes")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "spooled")
	for i := range 20 {
		cmd := child(t, "write-forever", path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(5+rand.IntN(40)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // killed before the first write landed
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != 1<<20 || (!bytes.Equal(b, bytes.Repeat(b[:1], 1<<20))) {
			t.Fatalf("kill %d: the file is %d bytes, not one whole content", i, len(b))
		}
	}
	if _, err := CleanDir(dir, 0); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) > 1 {
		t.Errorf("after CleanDir the folder holds %d entries, want only the file", len(entries))
	}
}

func TestClean(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-2 * time.Hour)
	files := map[string]bool{ // name: removed by Clean("state.json", 1h, "state.json.tmp-")
		"state.json":                          false,
		".state.json.tmp-0123456789abcdef":    true,
		"state.json.tmp-0a1b2c3d4e5f":         true, // an earlier version's
		".other.json.tmp-0123456789abcdef":    false,
		"state.json.bak":                      false,
		".state.json.tmp-not-hex-at-all-here": false,
	}
	for name := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := Clean(filepath.Join(dir, "state.json"), time.Hour, "state.json.tmp-"); err != nil {
		t.Fatal(err)
	}
	for name, removed := range files {
		_, err := os.Stat(filepath.Join(dir, name))
		if gone := errors.Is(err, fs.ErrNotExist); gone != removed {
			t.Errorf("%s: removed %v, want %v", name, gone, removed)
		}
	}
	n, err := CleanDir(dir, time.Hour)
	if err != nil || n != 1 {
		t.Errorf("CleanDir removed %d (%v), want the other file's temporary file", n, err)
	}
	if err := Clean(filepath.Join(dir, "absent", "x"), 0); err != nil {
		t.Errorf("Clean in a missing folder: %v", err)
	}
}

func TestIsTemp(t *testing.T) {
	for name, want := range map[string]bool{
		tempName("state.json"):             true,
		tempName("a.tmp-0123456789abcdef"): true,
		".x.tmp-0123456789abcdef":          true,
		"x.tmp-0123456789abcdef":           false,
		".tmp-0123456789abcdef":            false,
		".x.tmp-0123456789ABCDEF":          false,
		"state.json":                       false,
	} {
		if IsTemp(name) != want {
			t.Errorf("IsTemp(%q) = %v, want %v", name, !want, want)
		}
	}
}
