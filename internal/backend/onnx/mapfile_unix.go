//go:build unix

package onnx

import (
	"os"
	"syscall"
)

// mapFile maps a model file read-only, so that reading its declarations does not copy
// gigabytes of weights into the Go heap. release unmaps it; nothing may keep a slice
// of the bytes after that.
func mapFile(path string) (b []byte, release func(), err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.Size() == 0 {
		return nil, func() {}, nil // mmap refuses an empty length
	}
	b, err = syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return b, func() { _ = syscall.Munmap(b) }, nil
}
