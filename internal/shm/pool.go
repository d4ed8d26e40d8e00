package shm

import (
	"sync"
	"unsafe"

	"github.com/ferryml/ferry/internal/tensor"
)

// MinPooled is the smallest input buffer worth recycling: below it a fresh allocation
// costs less than keeping buffers around.
const MinPooled = 64 << 10

// inputBufs holds input buffers for reuse. ReadTensor overwrites every byte it hands
// out, so a recycled buffer needs no zeroing, which a fresh one gets from the runtime:
// one 16 MiB FP32 identity request at a time, that zeroing was 10% of the server's CPU
// and the copy out of the region 27%.
var inputBufs sync.Pool // of *[]byte

// Buffer returns n bytes of undefined content, for an input the caller overwrites
// whole (ReadTensor's, gRPC's raw_input_contents), recycled if one fits.
func Buffer(n int64) []byte {
	if n >= MinPooled {
		if p, ok := inputBufs.Get().(*[]byte); ok {
			if int64(cap(*p)) >= n && int64(cap(*p)) <= 2*n {
				return (*p)[:n]
			}
			inputBufs.Put(p) // sized for other requests
		}
	}
	return make([]byte, n)
}

// Recycle offers the buffers ReadTensor returned for one request back for reuse. Call
// it only once the request succeeded and its response is encoded: core.Infer has
// returned, so no batch still reads the inputs (after a failure, a cancelled request's
// batch may still run, so its buffers are left to the garbage collector). A buffer that
// an output still refers to, as from a model that returns its input, is left alone.
func Recycle(bufs [][]byte, outputs []*tensor.Tensor) {
	for _, b := range bufs {
		if cap(b) < MinPooled || aliased(b, outputs) {
			continue
		}
		b = b[:0]
		inputBufs.Put(&b)
	}
}

// aliased reports whether any output's data lies within b's backing array.
func aliased(b []byte, outputs []*tensor.Tensor) bool {
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	hi := lo + uintptr(cap(b))
	for _, t := range outputs {
		if t == nil || cap(t.Data) == 0 {
			continue
		}
		p := uintptr(unsafe.Pointer(unsafe.SliceData(t.Data)))
		if p >= lo && p < hi {
			return true
		}
	}
	return false
}
