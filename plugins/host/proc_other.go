//go:build !linux && !windows

package host

import "os/exec"

// configureCmd does nothing here: these systems have no parent-death signal, so a plugin is
// killed on every path the agent controls (Close, timeouts, cancellation), but not if the
// agent itself is killed.
func configureCmd(*exec.Cmd) {}
