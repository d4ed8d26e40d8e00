package sample

import "math"

// The truncations need the largest probabilities, not a sorted vocabulary: a
// quickselect finds them in expected linear time, where sorting 50257 ids would
// take milliseconds per token. Probabilities sit beside their ids so the passes
// read memory in order.

// Buckets rank probabilities coarsely, 8 steps per power of two, largest first,
// from the bits of the float: one pass fills them, and their running mass or count
// says below which bucket no id can survive top-p or top-k.
const (
	octaveSteps = 8
	nBuckets    = 64 * octaveSteps
)

// bucket is e's bucket, for e in [0, 1]; a larger e never has a larger bucket.
func bucket(e float64) int {
	b := math.Float64bits(e)
	exp := int(b>>52) & 0x7ff
	k := (1023-exp)*octaveSteps + octaveSteps - 1 - int(b>>49&(octaveSteps-1))
	return max(0, min(k, nBuckets-1)) // NaN or past 1 would index outside
}

// lowEdge is the smallest probability in bucket k; 0 for the last bucket, which
// holds everything smaller.
func lowEdge(k int) float64 {
	if k >= nBuckets-1 {
		return 0
	}
	exp, step := 1023-k/octaveSteps, octaveSteps-1-k%octaveSteps
	return math.Float64frombits(uint64(exp)<<52 | uint64(step)<<49)
}

// cutoff is the last bucket that can hold an id top-k or top-p keeps, given z, the
// total probability. Its sums run in another order than the select's, so it
// allows one bucket more against rounding.
func (s *Sampler) cutoff(z float64) int {
	cut := nBuckets - 1
	if k := s.p.TopK; k > 0 {
		var n int
		for b, c := range s.count {
			if n += int(c); n >= k {
				cut = b
				break
			}
		}
	}
	if p := s.p.TopP; p > 0 && p < 1 {
		var m float64
		for b, x := range s.mass {
			if m += x; m >= p*z {
				cut = min(cut, b+1)
				break
			}
		}
	}
	return min(cut, nBuckets-1)
}

// cand is an id and its unnormalised probability.
type cand struct {
	p  float64
	id int32
}

// before reports whether a ranks before b: higher probability, then lower id.
func before(a, b cand) bool {
	return a.p > b.p || (a.p == b.p && a.id < b.id)
}

// partition reorders c around a pivot so that c[:k] rank before c[k] and c[k+1:]
// after it, and returns k.
func (s *Sampler) partition(c []cand) int {
	// xorshift for the pivot: an adversarial order cannot make the select quadratic,
	// and the draws stay those of the seeded source.
	s.pivot ^= s.pivot << 13
	s.pivot ^= s.pivot >> 7
	s.pivot ^= s.pivot << 17
	p := int(s.pivot % uint64(len(c)))
	last := len(c) - 1
	c[p], c[last] = c[last], c[p]
	pv, k := c[last], 0
	for i := 0; i < last; i++ {
		if before(c[i], pv) {
			c[i], c[k] = c[k], c[i]
			k++
		}
	}
	c[k], c[last] = c[last], c[k]
	return k
}

// selectK reorders c so that c[:k] are the k best ids (in no particular order).
func (s *Sampler) selectK(c []cand, k int) {
	lo, hi := 0, len(c)
	for hi-lo > 1 {
		p := lo + s.partition(c[lo:hi])
		switch {
		case p == k || p == k-1:
			return
		case p > k:
			hi = p
		default:
			lo = p + 1
		}
	}
}

// selectMass reorders c and returns n such that c[:n] is the smallest best-first
// prefix whose probability reaches target (vLLM's top-p: an id is kept when the
// mass ranked before it is below p). At least one id is kept.
func (s *Sampler) selectMass(c []cand, target float64) int {
	lo, hi := 0, len(c)
	var acc float64 // the mass of c[:lo], all of which ranks before c[lo:]
	for lo < hi {
		p := lo + s.partition(c[lo:hi])
		m := sum(c[lo:p])
		if acc+m >= target {
			hi = p
			continue
		}
		acc += m + c[p].p
		if acc >= target {
			return p + 1
		}
		lo = p + 1
	}
	return max(lo, 1)
}
