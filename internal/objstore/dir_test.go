package objstore_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/internal/objstore/objstoretest"
)

func TestDirConformance(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		d, err := objstore.NewDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

// TestDirStaysInside: refused keys write nothing anywhere, inside the root or beside it.
func TestDirStaysInside(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "store")
	d, err := objstore.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, key := range []string{"../escape", "a/../../escape", "..\\escape", "/escape", "a/../../../../tmp/escape"} {
		if _, err := d.Put(ctx, key, []byte("x")); !errors.Is(err, objstore.ErrBadKey) {
			t.Errorf("Put(%q) = %v, want ErrBadKey", key, err)
		}
	}
	entries, err := os.ReadDir(parent)
	if err != nil || len(entries) != 1 || entries[0].Name() != "store" {
		t.Errorf("beside the store root: %v, %v; want only the root", entries, err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("inside the store root after refused puts: %v", entries)
	}
}

// TestDirSkipsPartialWrites: a temporary file left by a crash mid-Put is not an object.
func TestDirSkipsPartialWrites(t *testing.T) {
	root := t.TempDir()
	d, err := objstore.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := d.Put(ctx, "practices/A/x", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{".tmp-objstore-123", ".x.tmp-0123456789abcdef"} {
		if err := os.WriteFile(filepath.Join(root, "practices", "A", name), []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	list, err := d.List(ctx, "practices/")
	if err != nil || len(list) != 1 || list[0].Key != "practices/A/x" {
		t.Errorf("List = %v, %v; want only practices/A/x", list, err)
	}
	for _, key := range []string{"practices/A/.tmp-objstore-123", "practices/A/.x.tmp-0123456789abcdef", "practices/.A.tmp-lock/x"} {
		if _, err := d.Stat(ctx, key); !errors.Is(err, objstore.ErrBadKey) {
			t.Errorf("Stat(%q), a reserved name = %v, want ErrBadKey", key, err)
		}
	}
}

// TestNewDirCleansLeftovers: opening a store removes the temporary files of writes a crash
// interrupted (this version's and earlier ones'), once they are old enough that no live
// writer in another process can still own them.
func TestNewDirCleansLeftovers(t *testing.T) {
	root := t.TempDir()
	d, err := objstore.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := d.Put(ctx, "federation/current.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	files := map[string]bool{ // path: removed by the next NewDir
		"federation/.current.json.tmp-0123456789abcdef":       true,  // a crash mid-Put
		"practices/A/runs/r/.tmp-objstore-4029384":            true,  // an earlier version's
		"federation/.current.json.tmp-fedcba9876543210.fresh": false, // not a temporary file's name
		"federation/current.json":                             false,
	}
	for name := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	live := filepath.Join(root, "federation", ".current.json.tmp-00000000000000aa")
	if err := os.WriteFile(live, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := objstore.NewDir(root); err != nil {
		t.Fatal(err)
	}
	for name, removed := range files {
		_, err := os.Stat(filepath.Join(root, filepath.FromSlash(name)))
		if gone := errors.Is(err, fs.ErrNotExist); gone != removed {
			t.Errorf("%s: removed %v, want %v", name, gone, removed)
		}
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("NewDir removed a temporary file written moments ago, which another process may be writing: %v", err)
	}
	list, err := d.List(ctx, "")
	if err != nil || len(list) != 1 || list[0].Key != "federation/current.json" {
		t.Errorf("List = %v, %v; want only federation/current.json", list, err)
	}
}

// TestDirKeyUnderObject: a key below an existing object cannot be a file; the error says so.
func TestDirKeyUnderObject(t *testing.T) {
	d, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := d.Put(ctx, "a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"a/b/c", "a"} {
		if _, err := d.Put(ctx, key, []byte("y")); !errors.Is(err, objstore.ErrBadKey) || !strings.Contains(err.Error(), "prefix") {
			t.Errorf("Put(%q) = %v, want ErrBadKey explaining the prefix clash", key, err)
		}
	}
}

func TestNewDirOnAFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := objstore.NewDir(f); err == nil {
		t.Error("NewDir on a file succeeded")
	}
}
