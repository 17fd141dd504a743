package host

import (
	"os/exec"
	"sync"
	"unsafe"

	"golang.org/x/sys/windows"
)

// configureCmd ties the plugin to the agent's lifetime, as Pdeathsig does on Linux: the
// agent puts itself, once, into a job object created with JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
// and every process it starts afterwards, each plugin, is created inside that job. The only
// handle to the job is the agent's, so when the agent exits however it exits (service stop,
// crash, End task) Windows closes the handle and kills every plugin still in the job.
//
// The job holds the agent rather than each plugin because go-plugin starts the plugin
// itself and the host sees the process only after the handshake: assigning it then would
// leave a window in which a plugin could outlive an agent killed during start-up. A child
// created inside a job is in it from its first instruction.
//
// If the job cannot be made (an old Windows that forbids nested jobs, say) the plugin is
// still killed on every path the agent controls (Close, timeouts, cancellation).
func configureCmd(*exec.Cmd) { killOnExit.Do(joinKillOnCloseJob) }

var killOnExit sync.Once

func joinKillOnCloseJob() {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return
	}
	info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{
		BasicLimitInformation: windows.JOBOBJECT_BASIC_LIMIT_INFORMATION{LimitFlags: windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE},
	}
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation, uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		windows.CloseHandle(job)
		return
	}
	if err := windows.AssignProcessToJobObject(job, windows.CurrentProcess()); err != nil {
		windows.CloseHandle(job)
		return
	}
	// The handle is deliberately never closed: closing it is what kills the plugins, and
	// the system does that when the agent exits.
}
