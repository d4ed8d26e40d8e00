package sample

// The truncations need the largest probabilities, not a sorted vocabulary: a
// quickselect finds them in expected linear time, where sorting 50257 ids would
// take milliseconds per token. Probabilities sit beside their ids so the passes
// read memory in order.

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
