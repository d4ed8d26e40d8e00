package shm

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// guardedCopy copies src to dst, turning a memory fault into an error. A client can
// ftruncate a shared memory object while it is mapped; touching a page past the new end
// then raises SIGBUS, which would kill the process. SetPanicOnFault makes the runtime
// raise a panic in this goroutine instead, recovered here. copy is Go (runtime memmove),
// which is what makes this work: a fault in C code cannot be recovered.
func guardedCopy(dst, src []byte) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		re, ok := v.(runtime.Error)
		if !ok {
			panic(v)
		}
		if a, ok := re.(interface{ Addr() uintptr }); ok {
			err = fmt.Errorf("memory fault at %#x", a.Addr())
			return
		}
		err = fmt.Errorf("memory fault: %v", re)
	}()
	copy(dst, src)
	return nil
}
