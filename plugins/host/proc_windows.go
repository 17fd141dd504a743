package host

import "os/exec"

// configureCmd is where a Windows agent will tie the plugin to its own lifetime.
//
// TODO(windows): assign the plugin to a job object created with
// JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE (golang.org/x/sys/windows: CreateJobObject,
// SetInformationJobObject, AssignProcessToJobObject after Start), so the plugin dies with the
// agent as Pdeathsig does on Linux. Until then a plugin is killed on every path the agent
// controls (Close, timeouts, cancellation), but not if the agent itself is killed.
func configureCmd(*exec.Cmd) {}
