package status

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStateFileLeftovers: a full disk or a crash while the service rewrote its state file left
// a temporary file beside it (state.json.tmp-* in earlier versions); the next open of the
// spool removes it, and the state file itself is whole.
func TestStateFileLeftovers(t *testing.T) {
	dir := t.TempDir()
	path := Path(dir)
	want := &State{Updated: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), PID: 42, Service: true}
	if err := Write(path, want); err != nil {
		t.Fatal(err)
	}
	left := []string{"state.json.tmp-0a1b2c3d4e5f", ".state.json.tmp-0123456789abcdef"}
	for _, name := range left {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(`{"updated":`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	keep := filepath.Join(dir, "release.log")
	if err := os.WriteFile(keep, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Clean(path); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 2 || names[0] != "release.log" || names[1] != FileName {
		t.Errorf("after Clean the spool folder holds %v, want release.log and %s", names, FileName)
	}
	got, err := Read(path)
	if err != nil || got == nil || !got.Updated.Equal(want.Updated) || got.PID != 42 {
		t.Errorf("Read = %+v, %v; want what was written", got, err)
	}
}
