package python

import (
	"os"
	"syscall"
)

// sysProcAttr puts the child in its own process group, so a terminal's Ctrl-C reaches
// Ferry alone (Ferry then runs finalize()) and killGroup stops what model.py started;
// and it kills the child if Ferry itself dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killGroup(pid int) { syscall.Kill(-pid, syscall.SIGKILL) }

// growPipe asks for a 1 MiB pipe buffer (Linux's default is 64 KiB), so a large tensor
// crosses in fewer wake-ups of the reader. Best effort: the system limit may refuse it.
func growPipe(f *os.File) {
	const fSetPipeSize = 1031 // F_SETPIPE_SZ
	if c, err := f.SyscallConn(); err == nil {
		c.Control(func(fd uintptr) {
			syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSize, 1<<20)
		})
	}
}
