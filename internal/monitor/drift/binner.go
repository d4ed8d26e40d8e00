package drift

import (
	"math"
	"slices"
	"sort"
)

// binner finds a value's slot among a feature's edges in O(1) on average: a uniform
// grid over [e_0, e_last] with gridPerBin cells per bin remembers the first bin each
// cell overlaps, so a lookup is one multiply, one table read and, where a cell spans
// several (narrow quantile) bins, a short search within them. Slots: 0 below e_0,
// 1..nb the bins [e_i−1, e_i) with the last closed, nb+1 above the last edge.
type binner struct {
	edges  []float64
	padded []float64 // edges, then scanWidth +Inf: scan reads past the last edge
	lo, hi float64
	scale  float64  // cells per unit
	first  []uint16 // first[c]: the bin (0-based) holding the cell's left end
}

const gridPerBin = 4

// scanWidth is how many edges slot compares without branching; a cell with more
// bins than that searches.
const scanWidth = 4

func newBinner(edges []float64) *binner {
	nb := len(edges) - 1
	// One array holds edges and padding, so the two views share their cache lines.
	padded := append(slices.Clip(edges), slices.Repeat([]float64{math.Inf(1)}, scanWidth)...)
	b := &binner{edges: padded[: nb+1 : nb+1], padded: padded, lo: edges[0], hi: edges[nb]}
	if b.hi <= b.lo || nb < 2 || !finite(b.hi-b.lo) {
		return b // one (possibly zero-width) bin, or a range too wide for a grid: search
	}
	cells := nb * gridPerBin
	b.scale = float64(cells) / (b.hi - b.lo)
	b.first = make([]uint16, cells+1)
	k := 0
	for c := range b.first {
		x := b.lo + float64(c)/b.scale
		for k+1 < nb && edges[k+1] <= x {
			k++
		}
		b.first[c] = uint16(k)
	}
	return b
}

// slot returns v's slot; v must not be NaN.
func (b *binner) slot(v float64) int {
	nb := len(b.edges) - 1
	switch {
	case v < b.lo:
		return 0
	case v > b.hi:
		return nb + 1
	case v == b.hi || nb == 1:
		return nb
	case b.first == nil:
		return sort.Search(len(b.edges), func(i int) bool { return b.edges[i] > v })
	}
	c := min(max(int((v-b.lo)*b.scale), 0), len(b.first)-2)
	k, end := int(b.first[c]), int(b.first[c+1])
	if end-k <= scanWidth-2 {
		// v's bin is k−1..end+1 (the cell index may be off by one from rounding):
		// count the edges at or below v among those, with no branch to mispredict on
		// random data (the loops below cost ~5 ns a value, mostly mispredictions).
		lo := max(k-1, 0)
		e := b.padded[lo+1 : lo+1+scanWidth : lo+1+scanWidth]
		k = lo + b2i(e[0] <= v) + b2i(e[1] <= v) + b2i(e[2] <= v) + b2i(e[3] <= v)
		if b.edges[k] <= v && v < b.edges[k+1] {
			return k + 1
		}
	} else if end-k > 8 {
		// many narrow bins in one cell: binary search among them
		k += sort.Search(end-k, func(i int) bool { return b.edges[k+i+1] > v })
	}
	// The cell index may be off by one from rounding: settle on the bin holding v.
	for k > 0 && b.edges[k] > v {
		k--
	}
	for k+1 < nb && b.edges[k+1] <= v {
		k++
	}
	return k + 1
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// finite reports whether v is neither NaN nor ±Inf.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
