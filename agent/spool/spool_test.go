package spool

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tributary-health/tributary/formats"
)

func signedRun(t *testing.T, runID string) (File, []byte) {
	t.Helper()
	_, priv, _ := formats.GenerateKey()
	data := []byte("arrow bytes")
	m := &formats.Manifest{FormatVersion: formats.FormatVersion, Practice: "P1", RunID: runID, Created: time.Now(),
		Policy: formats.PolicyUK.Name, From: "2024-01", To: "2024-12", Files: []formats.FileEntry{formats.Entry("P1", runID, data)}}
	env, err := formats.SignManifest(m, priv)
	if err != nil {
		t.Fatal(err)
	}
	return File{Name: formats.FiguresName, Data: data}, env
}

// TestIncompleteRunDiscarded: a run a crash interrupted before its manifest was written is
// never pending and is removed at the next Open; a complete run survives.
func TestIncompleteRunDiscarded(t *testing.T) {
	dir := t.TempDir()
	s, _, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, env := signedRun(t, "20240201T000000Z-00000001")
	if err := s.WriteRun("20240201T000000Z-00000001", []File{f}, env); err != nil {
		t.Fatal(err)
	}
	// The crash: a file written, the manifest not, and a temporary file left half-written.
	half := filepath.Join(dir, "runs", "20240201T000000Z-00000002")
	os.MkdirAll(half, 0o700)
	os.WriteFile(filepath.Join(half, formats.FiguresName), []byte("arrow"), 0o600)
	os.WriteFile(filepath.Join(half, ".tmp-manifest.json-abc"), []byte("{"), 0o600)
	runs, err := s.Pending()
	if err != nil || len(runs) != 1 || runs[0].ID != "20240201T000000Z-00000001" {
		t.Fatalf("pending = %+v, %v; want only the complete run", runs, err)
	}
	s2, discarded, err := Open(dir)
	if err != nil || len(discarded) != 1 || discarded[0] != "20240201T000000Z-00000002" {
		t.Fatalf("Open discarded %v, %v", discarded, err)
	}
	if _, err := os.Stat(half); !os.IsNotExist(err) {
		t.Fatal("the incomplete run is still there")
	}
	if runs, _ := s2.Pending(); len(runs) != 1 {
		t.Fatal("the complete run was lost")
	}
}

func TestSentMarkersAndComplete(t *testing.T) {
	s, _, _ := Open(t.TempDir())
	id := "20240201T000000Z-00000001"
	f, env := signedRun(t, id)
	if err := s.WriteRun(id, []File{f}, env); err != nil {
		t.Fatal(err)
	}
	if s.IsSent(id, f.Name) {
		t.Fatal("nothing is sent yet")
	}
	if err := s.MarkSent(id, f.Name); err != nil || !s.IsSent(id, f.Name) {
		t.Fatalf("MarkSent: %v", err)
	}
	st, _ := s.Stats()
	if st.PendingRuns != 1 || st.PendingBytes != int64(len(f.Data)) {
		t.Fatalf("stats %+v", st)
	}
	if err := s.Complete(id); err != nil {
		t.Fatal(err)
	}
	if runs, _ := s.Pending(); len(runs) != 0 {
		t.Fatal("a completed run is still pending")
	}
	if err := s.LogRelease(Release{RunID: id, Key: "k", Size: 1}); err != nil {
		t.Fatal(err)
	}
	// A line torn by a crash mid-write is passed over, not fatal.
	fh, _ := os.OpenFile(s.LogPath(), os.O_APPEND|os.O_WRONLY, 0)
	fh.WriteString(`{"time":"2024`)
	fh.Close()
	rel, err := s.Releases()
	if err != nil || len(rel) != 1 || rel[0].RunID != id {
		t.Fatalf("releases %+v %v", rel, err)
	}
}

// TestOpenRemovesLeftovers: a crash (or a full disk) while writing a complete run's sent
// marker, the state file or any other spool file leaves a temporary file; the next Open
// removes it, this version's and an earlier one's, and keeps the run.
func TestOpenRemovesLeftovers(t *testing.T) {
	dir := t.TempDir()
	s, _, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	id := "20240201T000000Z-00000001"
	f, env := signedRun(t, id)
	if err := s.WriteRun(id, []File{f}, env); err != nil {
		t.Fatal(err)
	}
	leftovers := []string{
		filepath.Join(dir, ".state.json.tmp-0123456789abcdef"),
		filepath.Join(dir, "runs", id, ".figures.arrow.tmp-0123456789abcdef"),
		filepath.Join(dir, "runs", id, "sent", ".figures.arrow.tmp-fedcba9876543210"),
		filepath.Join(dir, "runs", id, "sent", ".tmp-manifest.json-0a1b2c3d4e5f"),
	}
	for _, p := range leftovers {
		if err := os.WriteFile(p, []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s2, discarded, err := Open(dir)
	if err != nil || len(discarded) != 0 {
		t.Fatalf("Open: discarded %v, %v", discarded, err)
	}
	for _, p := range leftovers {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s is still there after Open", p)
		}
	}
	if runs, err := s2.Pending(); err != nil || len(runs) != 1 || s2.IsSent(id, f.Name) {
		t.Errorf("after Open: pending %d runs (%v), sent marker %v; want the run, unsent", len(runs), err, s2.IsSent(id, f.Name))
	}
}
