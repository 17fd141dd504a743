//go:build unix

package combine_test

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/registry"
	"github.com/tributary-health/tributary/formats"
)

// TestIrregularFilesInADirectoryStore is the review's attack on the file:// store: a named
// pipe in place of a run's file hung combine for ever (blocked in openat); a practice folder
// replaced by a symbolic link to outside the store, and a manifest replaced by a folder or a
// pipe, made the practice vanish with no quarantine entry; a link to /etc/passwd was opened
// and its size written into the report. Now each is quarantined as not_a_file with its
// reason, nothing outside the store is opened, and the combine finishes.
func TestIrregularFilesInADirectoryStore(t *testing.T) {
	f := newFixture(t, "A81001", "B82002", "C83003", "D84004")
	jan := month("2024-01")
	run := func(p string, day int) string {
		return f.writeRun(p, time.Date(2024, 3, day, 0, 0, 0, 0, time.UTC), runOf(p, runID(day, "aaaaaaaa"), jan, jan, formats.PolicyUK,
			truth{jan, formats.Admissions, "90+", "female", 30}))
	}
	root := f.st.Root()
	abs := func(key string) string { return filepath.Join(root, filepath.FromSlash(key)) }
	// A: its run's file becomes a named pipe.
	run("A81001", 1)
	fileA := formats.SubmissionKey("A81001", runID(1, "aaaaaaaa"))
	os.Remove(abs(fileA))
	if err := syscall.Mkfifo(abs(fileA), 0o644); err != nil {
		t.Fatal(err)
	}
	// B: its manifest becomes a folder.
	run("B82002", 2)
	manifestB := formats.ManifestKey("B82002", runID(2, "aaaaaaaa"))
	os.Remove(abs(manifestB))
	os.MkdirAll(abs(manifestB), 0o755)
	// C: its whole practice folder becomes a link to a folder outside the store.
	run("C83003", 3)
	outside := t.TempDir()
	os.Rename(abs("practices/C83003"), filepath.Join(outside, "C83003"))
	if err := os.Symlink(filepath.Join(outside, "C83003"), abs("practices/C83003")); err != nil {
		t.Fatal(err)
	}
	// D: a link to /etc/passwd where its manifest belongs.
	run("D84004", 4)
	manifestD := formats.ManifestKey("D84004", runID(4, "aaaaaaaa"))
	os.Remove(abs(manifestD))
	if err := os.Symlink("/etc/passwd", abs(manifestD)); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := combine.Run(ctx, f.st, f.coord.Public().(ed25519.PublicKey), combine.Options{})
	if err != nil {
		t.Fatalf("combine: %v", err)
	}
	want := map[string]string{fileA: "named pipe", manifestB: "folder", "practices/C83003": "symbolic link", manifestD: "symbolic link"}
	for key, what := range want {
		found := false
		for _, q := range res.Report.Quarantined {
			if q.Key == key {
				found = true
				if q.Kind != "not_a_file" || !strings.Contains(q.Reason, what) {
					t.Errorf("%s quarantined as %s: %s; want not_a_file naming %s", key, q.Kind, q.Reason, what)
				}
			}
		}
		if !found {
			t.Errorf("%s (%s) was not quarantined: %+v", key, what, res.Report.Quarantined)
		}
	}
	report, _, err := f.st.Get(ctx, res.Pointer.Objects[combine.ReportJSON].Key, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat("/etc/passwd"); err == nil && strings.Contains(string(report), `"size": `+strconv.FormatInt(fi.Size(), 10)) {
		t.Error("the report holds the size of a file outside the store")
	}
	// The registry replaced by a link to a device is an error that says so, never "no registry yet".
	os.Remove(abs(formats.RegistryKey))
	if err := os.Symlink("/dev/urandom", abs(formats.RegistryKey)); err != nil {
		t.Fatal(err)
	}
	_, err = registry.Load(ctx, f.st, f.coord.Public().(ed25519.PublicKey))
	if err == nil || strings.Contains(err.Error(), "no registry") || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("a registry linked to a device: %v", err)
	}
}
