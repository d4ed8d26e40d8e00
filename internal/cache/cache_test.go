package cache

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/ferryml/ferry/internal/tensor"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func key(s string) Key { return sha256.Sum256([]byte(s)) }

// outputs is one UINT8 output of n bytes, all equal to fill.
func outputs(n int, fill byte) []*tensor.Tensor {
	return []*tensor.Tensor{{Name: "out", DType: tensor.Uint8, Shape: tensor.Shape{1, int64(n)}, Data: bytes.Repeat([]byte{fill}, n)}}
}

func TestGetReturnsWhatWasPut(t *testing.T) {
	c := New(1 << 20)
	in := outputs(100, 7)
	if !c.Put(key("a"), in) {
		t.Fatal("Put of a small entry returned false")
	}
	got, ok := c.Get(key("a"))
	if !ok || len(got) != 1 || !bytes.Equal(got[0].Data, in[0].Data) || got[0].Name != "out" || got[0].Shape.String() != "[1,100]" {
		t.Fatalf("Get(a) = %+v, %v; want the tensor put", got, ok)
	}
	if _, ok := c.Get(key("b")); ok {
		t.Fatal("Get(b) hit a key never put")
	}
	if c.Len() != 1 || c.Bytes() != Size(in) {
		t.Fatalf("Len %d Bytes %d; want 1 and %d", c.Len(), c.Bytes(), Size(in))
	}
}

// TestPutCopiesAndGetIsolates: the caller's tensors stay its own after Put, and a hit's
// Name and Shape can be changed without touching the cache.
func TestPutCopiesAndGetIsolates(t *testing.T) {
	c := New(1 << 20)
	in := outputs(8, 1)
	c.Put(key("a"), in)
	in[0].Data[0], in[0].Shape[1], in[0].Name = 99, 3, "changed"
	got, _ := c.Get(key("a"))
	got[0].Name, got[0].Shape[0] = "renamed", 42
	again, _ := c.Get(key("a"))
	if again[0].Data[0] != 1 || again[0].Shape.String() != "[1,8]" || again[0].Name != "out" {
		t.Fatalf("stored entry changed through the caller's tensors: %+v", again[0])
	}
}

// TestEvictsLeastRecentlyUsed: with room for two entries, a third evicts whichever was
// used least recently, counting Get as a use.
func TestEvictsLeastRecentlyUsed(t *testing.T) {
	size := Size(outputs(1000, 0))
	c := New(2*size + size/2) // two fit, three do not
	c.Put(key("a"), outputs(1000, 'a'))
	c.Put(key("b"), outputs(1000, 'b'))
	if _, ok := c.Get(key("a")); !ok { // a is now the most recently used
		t.Fatal("a missing before any eviction")
	}
	c.Put(key("c"), outputs(1000, 'c'))
	if _, ok := c.Get(key("b")); ok {
		t.Error("after putting c: b survived although it was the least recently used")
	}
	// Order now (most recent first): c, a. Touch a, so c is the oldest.
	if _, ok := c.Get(key("a")); !ok {
		t.Fatal("after putting c: a was evicted although b was older")
	}
	c.Put(key("d"), outputs(1000, 'd'))
	if _, ok := c.Get(key("c")); ok {
		t.Error("after putting d: c survived although it was the least recently used")
	}
	for _, k := range []string{"a", "d"} {
		if _, ok := c.Get(key(k)); !ok {
			t.Errorf("after putting d: %s was evicted", k)
		}
	}
}

func TestRePutMarksUsedWithoutDoubleCounting(t *testing.T) {
	size := Size(outputs(500, 0))
	c := New(2 * size)
	c.Put(key("a"), outputs(500, 'a'))
	c.Put(key("b"), outputs(500, 'b'))
	c.Put(key("a"), outputs(500, 'a')) // a becomes most recent; bytes unchanged
	if c.Bytes() != 2*size || c.Len() != 2 {
		t.Fatalf("after re-put: Bytes %d Len %d; want %d and 2", c.Bytes(), c.Len(), 2*size)
	}
	c.Put(key("c"), outputs(500, 'c'))
	if _, ok := c.Get(key("b")); ok {
		t.Error("b survived; the re-put of a should have made b the oldest")
	}
}

func TestOversizeEntryIsNotStored(t *testing.T) {
	small := outputs(10, 's')
	c := New(Size(small) + 100)
	c.Put(key("small"), small)
	if c.Put(key("big"), outputs(1000, 'b')) {
		t.Fatal("Put of an entry larger than the budget returned true")
	}
	if _, ok := c.Get(key("big")); ok {
		t.Fatal("an entry larger than the budget was stored")
	}
	if _, ok := c.Get(key("small")); !ok {
		t.Fatal("an oversize Put evicted an entry although it stored nothing")
	}
}

func TestZeroBudgetStoresNothing(t *testing.T) {
	c := New(0)
	if c.Put(key("a"), nil) || c.Len() != 0 || c.Bytes() != 0 {
		t.Fatalf("a zero budget stored an entry: Len %d Bytes %d", c.Len(), c.Bytes())
	}
}

// TestBudgetNeverExceeded puts entries of random sizes and checks the accounting after
// each: never above budget, and equal to the sum of what is held.
func TestBudgetNeverExceeded(t *testing.T) {
	const budget = 64 << 10
	c := New(budget)
	rng := rand.New(rand.NewPCG(1, 2))
	held := map[Key]int64{}
	for i := range 2000 {
		k := key(fmt.Sprint(rng.IntN(300)))
		out := outputs(rng.IntN(20<<10), byte(i))
		if c.Put(k, out) {
			if _, had := held[k]; !had {
				held[k] = Size(out)
			}
		}
		if c.Bytes() > budget {
			t.Fatalf("put %d: Bytes %d over the budget %d", i, c.Bytes(), budget)
		}
		var sum int64
		for k, s := range held {
			if _, ok := c.Get(k); !ok {
				delete(held, k)
				continue
			}
			sum += s
		}
		if sum != c.Bytes() || len(held) != c.Len() {
			t.Fatalf("put %d: held %d entries of %d bytes; cache says %d and %d", i, len(held), sum, c.Len(), c.Bytes())
		}
	}
}

// TestConcurrentUse is for -race: many goroutines put and get overlapping keys.
func TestConcurrentUse(t *testing.T) {
	const budget = 32 << 10
	c := New(budget)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for range 2000 {
				n := rng.IntN(64)
				k := key(fmt.Sprint(n))
				if got, ok := c.Get(k); ok {
					if got[0].Data[0] != byte(n) || len(got[0].Data) != 100+n*10 {
						t.Errorf("key %d returned another key's outputs", n)
						return
					}
					continue
				}
				c.Put(k, outputs(100+n*10, byte(n)))
				if b := c.Bytes(); b > budget {
					t.Errorf("Bytes %d over the budget %d", b, budget)
					return
				}
			}
		})
	}
	wg.Wait()
}
