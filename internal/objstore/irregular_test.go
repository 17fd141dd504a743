//go:build unix

package objstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/tributary-health/tributary/internal/objstore"
)

// TestDirRefusesWhatIsNotAFile: a named pipe, a link out of the store, a link to a device and
// a folder named like an object are never opened (a pipe used to block Get for ever), each
// is ErrNotRegular, and List names them with the reason instead of leaving them out.
func TestDirRefusesWhatIsNotAFile(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	st, err := objstore.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, "a/ok.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(outside, []byte("not the store's"), 0o644)
	os.MkdirAll(filepath.Join(root, "a", "dir"), 0o755)
	if err := syscall.Mkfifo(filepath.Join(root, "a", "pipe.arrow"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink(outside, filepath.Join(root, "a", "link.json"))
	os.Symlink("/dev/zero", filepath.Join(root, "a", "zero.json"))
	os.Symlink(filepath.Dir(outside), filepath.Join(root, "a", "dir", "up"))
	os.MkdirAll(filepath.Join(root, "a", "folder.json"), 0o755)
	for _, key := range []string{"a/pipe.arrow", "a/link.json", "a/zero.json", "a/dir/up/secret", "a/folder.json"} {
		if _, _, err := st.Get(ctx, key, 1<<20); !errors.Is(err, objstore.ErrNotRegular) && !(key == "a/folder.json" && errors.Is(err, objstore.ErrNotFound)) {
			t.Errorf("Get %s: %v, want ErrNotRegular", key, err)
		}
		if _, err := st.Stat(ctx, key); err == nil {
			t.Errorf("Stat %s succeeded", key)
		}
	}
	infos, err := st.List(ctx, "a/")
	if err != nil {
		t.Fatal(err)
	}
	problems := map[string]string{}
	for _, in := range infos {
		if in.Problem != "" {
			problems[in.Key] = in.Problem
		}
	}
	want := map[string]string{"a/pipe.arrow": "a named pipe", "a/link.json": "a symbolic link", "a/zero.json": "a symbolic link",
		"a/dir/up": "a symbolic link", "a/folder.json": "a folder"}
	for k, v := range want {
		if problems[k] != v {
			t.Errorf("List: %s is %q, want %q (all: %v)", k, problems[k], v, problems)
		}
	}
	if len(infos) != len(want)+1 {
		t.Errorf("List gave %d entries, want the object and the %d things that are not files: %+v", len(infos), len(want), infos)
	}
}
