//go:build !linux

package inferlog

import "os"

// pageTrail advises the kernel on a log file's pages where it can (trail_linux.go);
// elsewhere it does nothing.
type pageTrail struct{}

func (*pageTrail) advance(*os.File, int64) {}
func (*pageTrail) done(*os.File)           {}
