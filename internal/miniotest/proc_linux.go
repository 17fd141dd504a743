package miniotest

import (
	"os"
	"strconv"
	"syscall"
)

// procAttr has the kernel kill the server when the thread that started it exits, so no
// server outlives a crashed or killed test binary.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

func processAlive(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}
