//go:build !linux && !windows

package service

import (
	"errors"
	"runtime"
)

var errUnsupported = errors.New("service installation is available for Linux (systemd) and Windows; on " + runtime.GOOS + " run 'tributary-agent run --config FILE' under the system's own service manager")

// Install is not available on this system.
func Install(Options) (string, error) { return "", errUnsupported }

// Uninstall is not available on this system.
func Uninstall(Options) (string, error) { return "", errUnsupported }

// Start is not available on this system.
func Start(Options) error { return errUnsupported }

// Stop is not available on this system.
func Stop(Options) error { return errUnsupported }

// State is not available on this system.
func State(Options) (string, error) { return "", errUnsupported }
