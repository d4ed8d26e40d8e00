package stats

import (
	"fmt"
	"math"
	"sort"
)

// MaxExactKS is the largest sample size on either side for which KSPValue counts
// lattice paths exactly (scipy's MAX_AUTO_N); beyond it the asymptotic form is used.
const MaxExactKS = 10000

// KS is the two-sample Kolmogorov–Smirnov statistic D = sup|F_ref − F_cur| of two
// samples and its two-sided p-value (KSPValue). NaN values are an error.
func KS(ref, cur []float64) (d, p float64, err error) {
	if len(ref) == 0 || len(cur) == 0 {
		return 0, 0, ErrEmpty
	}
	a, b := sortedFinite(ref), sortedFinite(cur)
	if a == nil || b == nil {
		return 0, 0, fmt.Errorf("KS: NaN or Inf in a sample")
	}
	var i, j int
	for i < len(a) && j < len(b) {
		x := math.Min(a[i], b[j])
		for i < len(a) && a[i] == x {
			i++
		}
		for j < len(b) && b[j] == x {
			j++
		}
		d = math.Max(d, math.Abs(float64(i)/float64(len(a))-float64(j)/float64(len(b))))
	}
	return d, KSPValue(d, len(a), len(b)), nil
}

func sortedFinite(x []float64) []float64 {
	out := append([]float64(nil), x...)
	for _, v := range out {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
	}
	sort.Float64s(out)
	return out
}

// KSPValue is the two-sided p-value of a two-sample KS statistic d between samples of
// sizes n and m: exact (KSExactP) when max(n, m) ≤ MaxExactKS, else KSAsymptoticP.
func KSPValue(d float64, n, m int) float64 {
	if n <= 0 || m <= 0 {
		return math.NaN()
	}
	if max(n, m) <= MaxExactKS {
		return KSExactP(d, n, m)
	}
	return KSAsymptoticP(d, n, m)
}

// KSExactP is P(D ≥ d) under H0 for samples of sizes n and m, by counting the lattice
// paths from (0,0) to (n,m) that touch |i/n − j/m| ≥ d (Hodges 1958). It tracks the
// share of paths reaching each point that have already left the band, so the
// recurrence only adds positive terms and tiny p-values keep their relative precision.
// It costs O(n·m) time and O(m) memory.
func KSExactP(d float64, n, m int) float64 {
	if d <= 0 {
		return 1
	}
	// D is a multiple of 1/(n·m); compare integers so ties are exact.
	h := int64(math.Ceil(d*float64(n)*float64(m) - 1e-7))
	out := func(i, j int) bool {
		v := int64(i)*int64(m) - int64(j)*int64(n)
		return v >= h || -v >= h
	}
	q := make([]float64, m+1) // q[j]: share of paths to (i,j) that have left the band
	q[0] = b2f(out(0, 0))
	for j := 1; j <= m; j++ {
		q[j] = q[j-1]
		if out(0, j) {
			q[j] = 1
		}
	}
	for i := 1; i <= n; i++ {
		if out(i, 0) {
			q[0] = 1
		}
		for j := 1; j <= m; j++ {
			if out(i, j) {
				q[j] = 1
				continue
			}
			s := float64(i + j)
			q[j] = q[j]*float64(i)/s + q[j-1]*float64(j)/s
		}
	}
	return math.Min(q[m], 1)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// KSAsymptoticP is the Kolmogorov limit with Stephens' small-sample correction:
// λ = (√en + 0.12 + 0.11/√en)·d with en = nm/(n+m), p = 2 Σ_{k≥1} (−1)^{k−1} e^{−2k²λ²},
// clipped to [0, 1].
func KSAsymptoticP(d float64, n, m int) float64 {
	en := float64(n) * float64(m) / float64(n+m)
	s := math.Sqrt(en)
	lambda := (s + 0.12 + 0.11/s) * d
	if lambda < 0.2 {
		return 1 // the series converges slowly here and its value is 1 to 1e-9
	}
	var p float64
	sign := 1.0
	for k := 1; k <= 100; k++ {
		t := sign * math.Exp(-2*float64(k*k)*lambda*lambda)
		p += t
		if math.Abs(t) < 1e-17 {
			break
		}
		sign = -sign
	}
	return math.Max(0, math.Min(1, 2*p))
}
