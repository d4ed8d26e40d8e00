package onnx

/*
#include <malloc.h>

static long long ferry_heap_in_use(void) {
	struct mallinfo2 m = mallinfo2();
	return (long long)(m.uordblks + m.hblkhd);
}
*/
import "C"

// HeapInUse reports the bytes the C heap has handed out and not freed (glibc's
// mallinfo2: uordblks plus hblkhd, over every arena). ONNX Runtime allocates a session's
// weights and buffers there, so the growth of this figure across opening a session is
// what the session holds, whatever freed memory the allocator reused; the process's RSS
// cannot tell that apart. It walks the allocator's free lists under their locks: call it
// around loads, not per request.
func HeapInUse() int64 { return int64(C.ferry_heap_in_use()) }
