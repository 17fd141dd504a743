package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/tributary-health/tributary/formats"
	pluginv1 "github.com/tributary-health/tributary/plugins/proto/tributary/plugin/v1"
)

// Version is the release version; a release build sets it with
// -ldflags "-X github.com/tributary-health/tributary/internal/cli.Version=v1.2.3". Otherwise
// it is the module version the binary was built at ("(devel)" from a checkout).
var Version = ""

// VersionInfo is what --version prints: the version, the commit, the Go version, and the
// versions of the contracts the binary speaks.
type VersionInfo struct {
	Version  string
	Commit   string // vcs.revision, with "(modified)" for a dirty tree; "unknown" without VCS stamping
	Go       string
	Format   int // formats.FormatVersion: the submission and manifest contract
	Registry int // formats.RegistryVersion
	Protocol int // the plugin protocol (plugins/proto), offered in the plugin handshake
	Rows     int // formats.RowsVersion: the rows plugins send, within the protocol
}

// BuildInfo reads the version information of the running binary.
func BuildInfo() VersionInfo {
	v := VersionInfo{Version: Version, Commit: "unknown", Go: runtime.Version(),
		Format: formats.FormatVersion, Registry: formats.RegistryVersion, Protocol: pluginv1.ProtocolVersion, Rows: formats.RowsVersion}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if v.Version == "" {
			v.Version = "unknown"
		}
		return v
	}
	if v.Version == "" {
		v.Version = bi.Main.Version
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	var modified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && v.Commit != "unknown" {
		v.Commit += " (modified)"
	}
	return v
}

// String is the --version text for the binary named name.
func (v VersionInfo) String(name string) string {
	return fmt.Sprintf("%s %s\ncommit:          %s\ngo:              %s\nformat version:  %d (registry %d)\nplugin protocol: %d (rows %d)\n",
		name, v.Version, v.Commit, v.Go, v.Format, v.Registry, v.Protocol, v.Rows)
}
