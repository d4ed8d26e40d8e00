package engine

import (
	"os"
	"syscall"
	"testing"
	"unsafe"
)

// Open commits the KV cache: every page of the blocks' arena (and of a shared-KV
// model's slots) is resident before the first request, so no step faults it in.
// The caches are 64 MB, larger than any earlier test's heap, so without the commit
// their pages are fresh from the kernel and not resident.
func TestOpenCommitsTheKVCache(t *testing.T) {
	for _, c := range []struct {
		name string
		path string
	}{{"blocks", tinyModel(t)}, {"shared", sharedModel(t, true)}} {
		t.Run(c.name, func(t *testing.T) {
			// TinyGPT: 2 layers, K and V, 128 floats a token: 2 KB a token.
			e := start(t, c.path, Config{ContextLength: 128, CacheTokens: 32 << 10, MaxSeqs: 8})
			bufs := [][]float32{e.arena}
			if e.slots != nil {
				bufs = append(bufs, e.slots.cache...)
			} else if c.name == "shared" {
				t.Fatal("the shared-KV model got no slots")
			}
			total, missing := 0, 0
			for _, b := range bufs {
				n, m := residency(t, b)
				total, missing = total+n, missing+m
			}
			if total < 16<<10 { // 64 MB in 4 KB pages
				t.Fatalf("%d pages: want the 64 MB cache", total)
			}
			if missing > 0 {
				t.Errorf("%d of the KV cache's %d pages are not resident after Open", missing, total)
			}
		})
	}
}

// residency returns the pages b's memory spans and how many of them are not
// resident (mincore(2)).
func residency(t *testing.T, b []float32) (pages, missing int) {
	t.Helper()
	size := uintptr(os.Getpagesize())
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b))) &^ (size - 1)
	end := uintptr(unsafe.Pointer(unsafe.SliceData(b))) + uintptr(4*len(b))
	vec := make([]byte, (end-start+size-1)/size)
	if _, _, errno := syscall.Syscall(syscall.SYS_MINCORE, start, end-start, uintptr(unsafe.Pointer(unsafe.SliceData(vec)))); errno != 0 {
		t.Fatalf("mincore: %v", errno)
	}
	for _, v := range vec {
		if v&1 == 0 {
			missing++
		}
	}
	return len(vec), missing
}
