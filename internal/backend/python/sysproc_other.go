//go:build !linux

package python

import (
	"os"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

func killGroup(int) {}

func growPipe(*os.File) {}
