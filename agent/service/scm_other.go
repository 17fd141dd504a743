//go:build !windows

package service

import "context"

// RunManaged is for the Windows Service Control Manager; elsewhere the service manager
// (systemd) runs the agent as an ordinary foreground process, so it never handles serve.
func RunManaged(string, func(context.Context) error) (bool, error) { return false, nil }
