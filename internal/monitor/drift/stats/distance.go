package stats

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// ErrEmpty is returned when a side has no mass (no values, or all weights zero).
var ErrEmpty = errors.New("empty distribution")

// Normalize returns counts scaled to sum to 1; ErrEmpty when they sum to 0, an error
// naming the index of a negative or non-finite count.
func Normalize(counts []float64) ([]float64, error) {
	var sum float64
	for i, c := range counts {
		if c < 0 || math.IsNaN(c) || math.IsInf(c, 0) {
			return nil, fmt.Errorf("count %d is %v: must be finite and ≥ 0", i, c)
		}
		sum += c
	}
	if sum == 0 {
		return nil, ErrEmpty
	}
	out := make([]float64, len(counts))
	for i, c := range counts {
		out[i] = c / sum
	}
	return out, nil
}

func sameLen(p, q []float64) error {
	if len(p) != len(q) {
		return fmt.Errorf("distributions have %d and %d bins", len(p), len(q))
	}
	if len(p) == 0 {
		return ErrEmpty
	}
	return nil
}

// EvidentlyEpsilon applies Evidently's zero-bin rule (get_binned_data) to one
// proportion vector: zeros become 0.0001, or min_nonzero/1e6 when the smallest non-zero
// proportion is ≤ 0.0001. The vector is not renormalized. p is not modified.
func EvidentlyEpsilon(p []float64) []float64 {
	minNZ := math.Inf(1)
	for _, v := range p {
		if v > 0 && v < minNZ {
			minNZ = v
		}
	}
	eps := 0.0001
	if minNZ <= eps {
		eps = minNZ / 1e6
	}
	out := make([]float64, len(p))
	for i, v := range p {
		out[i] = v
		if v == 0 {
			out[i] = eps
		}
	}
	return out
}

// PSI is the population stability index Σ (q−p)·ln(q/p) of reference proportions p
// and current proportions q, after Evidently's epsilon rule on each vector.
func PSI(p, q []float64) (float64, error) {
	if err := sameLen(p, q); err != nil {
		return 0, err
	}
	pe, qe := EvidentlyEpsilon(p), EvidentlyEpsilon(q)
	var s float64
	for i := range pe {
		s += (qe[i] - pe[i]) * math.Log(qe[i]/pe[i])
	}
	return s, nil
}

// JensenShannon is the Jensen–Shannon distance sqrt(½KL(p‖m)+½KL(q‖m)), m = ½(p+q),
// in log base (2 gives [0,1]; math.E gives Evidently's [0, √ln2]). p and q are
// normalized first, as scipy's jensenshannon does.
func JensenShannon(p, q []float64, base float64) (float64, error) {
	pn, qn, err := normalizePair(p, q)
	if err != nil {
		return 0, err
	}
	var d float64
	for i := range pn {
		m := (pn[i] + qn[i]) / 2
		d += klTerm(pn[i], m) + klTerm(qn[i], m)
	}
	d /= 2
	if base > 0 && base != math.E {
		d /= math.Log(base)
	}
	return math.Sqrt(math.Max(d, 0)), nil
}

func klTerm(a, m float64) float64 {
	if a == 0 {
		return 0
	}
	return a * math.Log(a/m)
}

// Hellinger is ‖√p − √q‖₂/√2 ∈ [0,1] of the normalized p and q.
func Hellinger(p, q []float64) (float64, error) {
	pn, qn, err := normalizePair(p, q)
	if err != nil {
		return 0, err
	}
	var s float64
	for i := range pn {
		d := math.Sqrt(pn[i]) - math.Sqrt(qn[i])
		s += d * d
	}
	return math.Sqrt(s) / math.Sqrt2, nil
}

// LInf is max_i |p_i − q_i| of the normalized p and q.
func LInf(p, q []float64) (float64, error) {
	pn, qn, err := normalizePair(p, q)
	if err != nil {
		return 0, err
	}
	var m float64
	for i := range pn {
		m = math.Max(m, math.Abs(pn[i]-qn[i]))
	}
	return m, nil
}

func normalizePair(p, q []float64) ([]float64, []float64, error) {
	if err := sameLen(p, q); err != nil {
		return nil, nil, err
	}
	pn, err := Normalize(p)
	if err != nil {
		return nil, nil, fmt.Errorf("reference: %w", err)
	}
	qn, err := Normalize(q)
	if err != nil {
		return nil, nil, fmt.Errorf("current: %w", err)
	}
	return pn, qn, nil
}

// Wasserstein is the 1-Wasserstein distance between two weighted samples, ∫|U−V| of
// their CDFs (scipy.stats.wasserstein_distance). Nil weights mean all ones.
func Wasserstein(u, v, uw, vw []float64) (float64, error) {
	us, err := weighted(u, uw)
	if err != nil {
		return 0, fmt.Errorf("reference: %w", err)
	}
	vs, err := weighted(v, vw)
	if err != nil {
		return 0, fmt.Errorf("current: %w", err)
	}
	all := make([]float64, 0, len(us.x)+len(vs.x))
	all = append(append(all, us.x...), vs.x...)
	sort.Float64s(all)
	var w float64
	var iu, iv int
	var cu, cv float64
	for k := 0; k+1 < len(all); k++ {
		for iu < len(us.x) && us.x[iu] <= all[k] {
			cu += us.w[iu]
			iu++
		}
		for iv < len(vs.x) && vs.x[iv] <= all[k] {
			cv += vs.w[iv]
			iv++
		}
		w += math.Abs(cu/us.sum-cv/vs.sum) * (all[k+1] - all[k])
	}
	return w, nil
}

type sample struct {
	x, w []float64
	sum  float64
}

// weighted sorts a sample by value, carrying its weights, and checks both.
func weighted(x, w []float64) (sample, error) {
	if w != nil && len(w) != len(x) {
		return sample{}, fmt.Errorf("%d values but %d weights", len(x), len(w))
	}
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
		if math.IsNaN(x[i]) || math.IsInf(x[i], 0) {
			return sample{}, fmt.Errorf("value %d is %v", i, x[i])
		}
		if w != nil && (w[i] < 0 || math.IsNaN(w[i]) || math.IsInf(w[i], 0)) {
			return sample{}, fmt.Errorf("weight %d is %v: must be finite and ≥ 0", i, w[i])
		}
	}
	sort.Slice(idx, func(a, b int) bool { return x[idx[a]] < x[idx[b]] })
	s := sample{x: make([]float64, len(x)), w: make([]float64, len(x))}
	for k, i := range idx {
		s.x[k], s.w[k] = x[i], 1
		if w != nil {
			s.w[k] = w[i]
		}
		s.sum += s.w[k]
	}
	if s.sum == 0 {
		return sample{}, ErrEmpty
	}
	return s, nil
}

// StdFloor is the smallest reference standard deviation NormedWasserstein divides by
// (Evidently's floor), so a single-valued reference gives a finite distance.
const StdFloor = 0.001

// NormedWasserstein is Wasserstein(ref, cur)/max(std_pop(ref), StdFloor), Evidently's
// "wasserstein" statistic and Azure's normalized Wasserstein.
func NormedWasserstein(ref, cur []float64) (float64, error) {
	w, err := Wasserstein(ref, cur, nil, nil)
	if err != nil {
		return 0, err
	}
	return w / math.Max(StdPop(ref), StdFloor), nil
}

// StdPop is the population standard deviation (ddof 0) of x.
func StdPop(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	var mean float64
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	var ss float64
	for _, v := range x {
		ss += (v - mean) * (v - mean)
	}
	return math.Sqrt(ss / float64(len(x)))
}

// ZTest is the two-proportion Z-test of x1 successes in n1 against x2 in n2:
// z = (p1−p2)/sqrt(P(1−P)(1/n1+1/n2)) and the two-sided p = 2(1−Φ(|z|)). When both
// proportions are 0 or both 1 there is no variance and no difference: z 0, p 1.
func ZTest(x1, n1, x2, n2 float64) (z, p float64, err error) {
	if n1 <= 0 || n2 <= 0 {
		return 0, 0, ErrEmpty
	}
	if x1 < 0 || x1 > n1 || x2 < 0 || x2 > n2 {
		return 0, 0, fmt.Errorf("successes %v/%v and %v/%v out of range", x1, n1, x2, n2)
	}
	p1, p2 := x1/n1, x2/n2
	pool := (x1 + x2) / (n1 + n2)
	se := math.Sqrt(pool * (1 - pool) * (1/n1 + 1/n2))
	if se == 0 {
		return 0, 1, nil
	}
	z = (p1 - p2) / se
	return z, 2 * NormalSF(math.Abs(z)), nil
}

// NDCG compares the ranking of features by live attribution with the ranking by
// training attribution (SageMaker Clarify): DCG = Σ a(F′_i)/log₂(i+1) over the live
// order F′, divided by the ideal DCG over the training order, where a is the training
// attribution. Both maps must name the same features.
func NDCG(train, live map[string]float64) (float64, error) {
	if len(train) == 0 {
		return 0, ErrEmpty
	}
	if len(train) != len(live) {
		return 0, fmt.Errorf("training has %d features, live %d", len(train), len(live))
	}
	for f := range train {
		if _, ok := live[f]; !ok {
			return 0, fmt.Errorf("feature %q has no live attribution", f)
		}
	}
	dcg := func(order map[string]float64) float64 {
		names := make([]string, 0, len(order))
		for f := range order {
			names = append(names, f)
		}
		sort.Slice(names, func(i, j int) bool {
			if order[names[i]] != order[names[j]] {
				return order[names[i]] > order[names[j]]
			}
			return names[i] < names[j]
		})
		var s float64
		for i, f := range names {
			s += train[f] / math.Log2(float64(i)+2)
		}
		return s
	}
	ideal := dcg(train)
	if ideal == 0 {
		return 0, errors.New("training attributions are all zero")
	}
	return dcg(live) / ideal, nil
}
