package shm

import (
	"testing"

	"github.com/ferryml/ferry/internal/tensor"
)

func TestRecycleReusesOnlyFreeLargeBuffers(t *testing.T) {
	const n = 1 << 20
	big := Buffer(n)
	reused := false
	// sync.Pool may drop what it is given (a GC, or at random under the race detector),
	// so offer it a few times.
	for range 20 {
		Recycle([][]byte{big}, nil)
		if got := Buffer(n); &got[0] == &big[0] {
			reused = true
			break
		}
	}
	if !reused {
		t.Errorf("a recycled %d-byte buffer was never reused", n)
	}

	held := Buffer(n)
	Recycle([][]byte{held}, []*tensor.Tensor{{Data: held[4096:8192]}})
	if got := Buffer(n); &got[0] == &held[0] {
		t.Error("a buffer an output still refers to was handed out again")
	}

	small := Buffer(MinPooled - 1)
	Recycle([][]byte{small}, nil)
	if got := Buffer(MinPooled - 1); &got[0] == &small[0] {
		t.Error("a buffer below MinPooled was pooled")
	}

	// A pooled buffer far larger than asked for is not handed to a small request.
	huge := Buffer(4 * n)
	Recycle([][]byte{huge}, nil)
	if got := Buffer(n); &got[0] == &huge[0] || len(got) != n {
		t.Errorf("a %d-byte request got the %d-byte buffer (len %d)", n, cap(huge), len(got))
	}
}
