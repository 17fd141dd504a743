package objstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	if err := os.WriteFile(filepath.Join(root, "practices", "A", ".tmp-objstore-123"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	list, err := d.List(ctx, "practices/")
	if err != nil || len(list) != 1 || list[0].Key != "practices/A/x" {
		t.Errorf("List = %v, %v; want only practices/A/x", list, err)
	}
	if _, err := d.Stat(ctx, "practices/A/.tmp-objstore-123"); !errors.Is(err, objstore.ErrBadKey) {
		t.Errorf("Stat of a temporary file = %v, want ErrBadKey", err)
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
