package host

import (
	"os/exec"
	"syscall"
)

// configureCmd makes the kernel kill the plugin when the agent dies, however it dies, so no
// plugin outlives the agent. Pdeathsig fires when the thread that started the child exits;
// Go keeps its threads for the life of the process, so in practice that is the agent's death.
func configureCmd(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
