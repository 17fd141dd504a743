package atomicfile

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestOneHelper: files are replaced through this package only, so every such write gets
// the same fsync, rename and cleanup. A new os.Rename or os.CreateTemp elsewhere fails here.
func TestOneHelper(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s: %v", root, err)
	}
	self := filepath.Join(root, "internal", "atomicfile")
	banned := [][]byte{[]byte("os.Rename("), []byte("os.CreateTemp("), []byte("ioutil.TempFile(")}
	var found []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p == self || d.Name() == "testdata" || (p != root && d.Name()[0] == '.') {
				return filepath.SkipDir
			}
			return nil
		}
		if filepath.Ext(p) != ".go" || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, line := range bytes.Split(src, []byte("\n")) {
			for _, b := range banned {
				if bytes.Contains(line, b) {
					rel, _ := filepath.Rel(root, p)
					found = append(found, rel+":"+strconv.Itoa(i+1)+": "+string(bytes.TrimSpace(line)))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(found)
	for _, f := range found {
		t.Errorf("%s: replace files with atomicfile.Write (or atomicfile.Rename for a folder)", f)
	}
}
