//go:build !linux

package miniotest

import "syscall"

// procAttr: outside Linux there is no parent-death signal; t.Cleanup stops the server.
func procAttr() *syscall.SysProcAttr { return nil }

// processAlive says yes, so stale shared-server data is only swept on Linux.
func processAlive(int) bool { return true }
