package host

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// Binary is a plugin executable found in a plugin directory.
type Binary struct {
	Name   string // file name without any .exe, e.g. "synthea"
	Path   string // absolute path
	SHA256 string // hex, as sha256sum prints it
}

// Discover lists the plugin executables in dir (not its subdirectories) with their checksums,
// sorted by name, so an operator can see what is installed and pin it. Hidden files,
// directories and files that are not executable are left out. Discovering a binary does not
// run it.
func Discover(dir string) ([]Binary, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return nil, fmt.Errorf("list plugin directory %s: %w; check the folder name, and that the agent may read it", abs, err)
	}
	var out []Binary
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil || !executable(name, info.Mode()) {
			continue
		}
		path := filepath.Join(abs, name)
		sum, err := FileSHA256(path)
		if err != nil {
			return nil, fmt.Errorf("checksum plugin %s: %w", path, err)
		}
		out = append(out, Binary{Name: strings.TrimSuffix(name, ".exe"), Path: path, SHA256: sum})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func executable(name string, mode os.FileMode) bool {
	if runtime.GOOS == "windows" {
		return strings.EqualFold(filepath.Ext(name), ".exe")
	}
	return mode&0o111 != 0
}
