package stats

import (
	"math"
	"testing"
)

func near(t *testing.T, name string, got, want, tol float64) {
	t.Helper()
	if math.IsInf(want, 0) || want == 0 && tol == 0 {
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
		return
	}
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.12g, want %.12g (±%g)", name, got, want, tol)
	}
}

func seq(lo, hi int) []float64 {
	var out []float64
	for i := lo; i <= hi; i++ {
		out = append(out, float64(i))
	}
	return out
}

func linspace(a, b float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = a + (b-a)*float64(i)/float64(n-1)
	}
	return out
}

func must(t *testing.T, v float64, err error) float64 {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The vectors of monitoring.md §1.10, recomputed there with scipy 1.10.1.
func TestPSIVectors(t *testing.T) {
	for _, tc := range []struct {
		name string
		p, q []float64
		want float64
	}{
		{"#1 income bins", []float64{0.4, 0.3, 0.3}, []float64{0.35, 0.25, 0.4}, 0.0445608547},
		{"#2 ten bins", []float64{.1, .1, .1, .1, .1, .1, .1, .1, .1, .1}, []float64{.08, .09, .10, .11, .12, .10, .09, .11, .10, .10}, 0.0121227161},
		{"#3 epsilon both sides", []float64{.1, .2, .3, .4, 0}, []float64{0, .25, .25, .25, .25}, 2.7360876503},
		{"#4 new category", []float64{.5, .5, 0}, []float64{.4, .4, .2}, 1.5640491119},
	} {
		t.Run(tc.name, func(t *testing.T) { near(t, "PSI", ok(t)(PSI(tc.p, tc.q)), tc.want, 1e-9) })
	}
	ref, cur := seq(0, 99), seq(50, 149)
	edges := SturgesEdges(ref, cur)
	if len(edges) != 10 || math.Abs(edges[1]-16.5555556) > 1e-6 || edges[9] != 149 {
		t.Errorf("SturgesEdges(0..99, 50..149) = %v, want 9 bins 0, 16.556, …, 149", edges)
	}
	near(t, "#5 PSIEvidently", ok(t)(PSIEvidently(ref, cur)), 7.4145327459, 1e-6)
	near(t, "#6 PSIDeciles", ok(t)(PSIDeciles(ref, cur)), 4.3463034965, 1e-6)
}

func TestChiSquareVectors(t *testing.T) {
	obs := []float64{16, 18, 16, 14, 12, 12}
	c, p, err := ChiSquareGoF(obs, []float64{88.0 / 6, 88.0 / 6, 88.0 / 6, 88.0 / 6, 88.0 / 6, 88.0 / 6}) // scipy: the mean
	near(t, "#7 χ²", must(t, c, err), 2.0, 1e-9)
	near(t, "#7 p", p, 0.849145036, 1e-6)
	c, p, err = ChiSquareGoF(obs, []float64{16, 16, 16, 16, 16, 8})
	near(t, "#8 χ²", must(t, c, err), 3.5, 1e-9)
	near(t, "#8 p", p, 0.623387628, 1e-6)
	cur := []float64{16, 16, 16, 16, 16, 8}
	c, p, err = ChiSquareEvidently(obs, cur)
	near(t, "#9 χ²", must(t, c, err), 3.1746031746, 1e-6)
	near(t, "#9 p", p, 0.67309, 1e-5)
	c, p, df, err := ChiSquareContingency([][]float64{{10, 10, 20}, {20, 20, 20}})
	near(t, "#10 χ²", must(t, c, err), 2.7777777778, 1e-6)
	near(t, "#10 p", p, 0.249352209, 1e-6)
	if df != 2 {
		t.Errorf("#10 df = %d, want 2", df)
	}
	c, p, df, err = ChiSquareContingency([][]float64{obs, cur})
	near(t, "#11 χ²", must(t, c, err), 1.6224089636, 1e-6)
	near(t, "#11 p", p, 0.8985262394, 1e-6)
	if df != 5 {
		t.Errorf("#11 df = %d, want 5", df)
	}
	c, p, err = ChiSquareGoF([]float64{40, 40, 20}, []float64{50, 50, 0})
	if err != nil || !math.IsInf(c, 1) || p != 0 {
		t.Errorf("#12 new category: χ² %v p %v err %v, want +Inf 0 nil", c, p, err)
	}
	near(t, "#13 Hellinger", ok(t)(Hellinger(obs, cur)), 0.0681277437, 1e-6)
}

func TestChiSquareSF(t *testing.T) {
	// Tail values to check the continued fraction: χ²₁ at 30 and χ²₁₀₀ at 200
	// (scipy.stats.chi2.sf).
	near(t, "sf(3.84,1)", ChiSquareSF(3.841458820694124, 1), 0.05, 1e-12)
	near(t, "sf(30,1)/4.3e-8", ChiSquareSF(30, 1)/4.3204630578274e-08, 1, 1e-9)
	near(t, "sf(0,3)", ChiSquareSF(0, 3), 1, 0)
	near(t, "sf(inf,3)", ChiSquareSF(math.Inf(1), 3), 0, 0)
}

func TestKSVectors(t *testing.T) {
	d, p, err := KS(seq(1, 5), seq(6, 10))
	near(t, "#14 D", must(t, d, err), 1, 1e-12)
	near(t, "#14 p", p, 2.0/252, 1e-9)
	ref := []float64{38.7, 41.5, 43.8, 44.5, 45.5, 46.0, 47.7, 58.0}
	cur := []float64{39.2, 39.3, 39.7, 41.4, 41.8, 42.9, 43.3, 45.8}
	d, p, err = KS(ref, cur)
	near(t, "#15 D", must(t, d, err), 0.625, 1e-12)
	near(t, "#15 p exact", p, 1120.0/12870, 1e-9)
	// §1.10 gives the asymptotic Kolmogorov value 0.0493; Stephens' correction is
	// within the 10% band the research allows.
	near(t, "#15 p Stephens/asymp", KSAsymptoticP(0.625, 8, 8)/0.0493164063, 1, 0.25)

	a, b := linspace(0, 1, 1000), linspace(0.1, 1.1, 1200)
	d, p, err = KS(a, b)
	near(t, "#16 D", must(t, d, err), 0.1008333333, 1e-9)
	near(t, "#16 p exact", p, 2.801215e-5, 1e-9)
	pa := KSAsymptoticP(d, 1000, 1200)
	near(t, "#16 p Stephens", pa, 2.706445e-5, 1e-10)
	if math.Abs(pa/2.801215e-5-1) > 0.1 || (pa < 0.05) != (p < 0.05) {
		t.Errorf("#16 asymptotic p %g is not within 10%% of exact 2.801215e-5 with the same decision", pa)
	}
	d, p, err = KS(seq(0, 99), seq(50, 149))
	near(t, "#17 D", must(t, d, err), 0.5, 1e-12)
	near(t, "#17 p/1.002465e-11", p/1.002465e-11, 1, 1e-5)
}

func TestKSLargeUsesAsymptotic(t *testing.T) {
	a, b := linspace(0, 1, 20000), linspace(0.03, 1.03, 30000)
	d, p, err := KS(a, b)
	must(t, d, err)
	if want := KSAsymptoticP(d, 20000, 30000); p != want {
		t.Errorf("KS p for n=20000 = %g, want the asymptotic %g", p, want)
	}
	if p >= 0.05 {
		t.Errorf("KS p for a 0.03 shift at n=20000 = %g, want < 0.05", p)
	}
}

func TestDistanceVectors(t *testing.T) {
	p, q := []float64{0.2, 0.3, 0.5}, []float64{0.3, 0.1, 0.6}
	near(t, "#18 JS e", ok(t)(JensenShannon(p, q, math.E)), 0.1829539661, 1e-9)
	near(t, "#18 JS 2", ok(t)(JensenShannon(p, q, 2)), 0.2197501085, 1e-9)
	near(t, "#19 JS e", ok(t)(JensenShannon([]float64{1, 0}, []float64{.5, .5}, math.E)), 0.4645014040, 1e-9)
	near(t, "#19 JS 2", ok(t)(JensenShannon([]float64{1, 0}, []float64{.5, .5}, 2)), 0.5579230453, 1e-9)
	near(t, "#20 JS 2", ok(t)(JensenShannon([]float64{1, 0, 0}, []float64{0, 1, 0}, 2)), 1, 1e-12)
	near(t, "#21 Hellinger", ok(t)(Hellinger(p, q)), 0.1847251674, 1e-9)
	near(t, "#22 L∞", ok(t)(LInf(p, q)), 0.2, 1e-12)
	near(t, "#23 W1", ok(t)(Wasserstein([]float64{0, 1, 3}, []float64{5, 6, 8}, nil, nil)), 5, 1e-12)
	near(t, "#24 W1 weighted", ok(t)(Wasserstein([]float64{0, 1}, []float64{0, 1}, []float64{3, 1}, []float64{2, 2})), 0.25, 1e-12)
	near(t, "#25 W1 weighted", ok(t)(Wasserstein([]float64{3.4, 3.9, 7.5, 7.8}, []float64{4.5, 1.4},
		[]float64{1.4, 0.9, 3.1, 7.2}, []float64{3.2, 3.5})), 4.0781331438, 1e-9)
	ref := []float64{38.7, 41.5, 43.8, 44.5, 45.5, 46.0, 47.7, 58.0}
	cur := []float64{39.2, 39.3, 39.7, 41.4, 41.8, 42.9, 43.3, 45.8}
	near(t, "#26 W1", ok(t)(Wasserstein(ref, cur, nil, nil)), 4.1625, 1e-9)
	near(t, "#26 std", StdPop(ref), 5.3280947580, 1e-9)
	near(t, "#26 normed W", ok(t)(NormedWasserstein(ref, cur)), 0.7812361058, 1e-9)
	near(t, "single-valued reference floors std", ok(t)(NormedWasserstein([]float64{1, 1}, []float64{1.001, 1.001})), 1, 1e-9)
}

func TestZTestAndNDCG(t *testing.T) {
	z, p, err := ZTest(60, 100, 45, 100)
	near(t, "#27 z", must(t, z, err), 2.1239769762, 1e-9)
	near(t, "#27 p", p, 0.0336720689, 1e-9)
	_, p, err = ZTest(10, 20, 10, 20)
	near(t, "#29 p", must(t, p, err), 1, 1e-12)
	_, p, _ = ZTest(0, 20, 0, 30)
	near(t, "no variance", p, 1, 0)
	v, err := NDCG(map[string]float64{"SAT": .70, "GPA": .50, "Rank": .05}, map[string]float64{"SAT": .10, "GPA": .20, "Rank": .70})
	near(t, "#28 NDCG", must(t, v, err), 0.6876, 1e-4)
}

func TestDefaultMethod(t *testing.T) {
	for _, tc := range []struct {
		numeric      bool
		rows, unique int
		want         Method
	}{
		{true, 1000, 6, MethodKS}, {true, 1000, 5, MethodChiSquare}, {true, 1000, 3, MethodChiSquare},
		{true, 1000, 2, MethodZ}, {false, 1000, 3, MethodChiSquare}, {false, 1000, 2, MethodZ},
		{true, 1001, 6, MethodWasserstein}, {true, 1001, 5, MethodJS}, {false, 1001, 50, MethodJS},
	} {
		if got := DefaultMethod(tc.numeric, tc.rows, tc.unique); got != tc.want {
			t.Errorf("DefaultMethod(numeric %v, rows %d, unique %d) = %s, want %s", tc.numeric, tc.rows, tc.unique, got, tc.want)
		}
	}
	if !MethodKS.Drifted(0.049, 0.05) || MethodKS.Drifted(0.05, 0.05) || !MethodPSI.Drifted(0.1, 0.1) || MethodPSI.Drifted(0.0999, 0.1) {
		t.Error("operators: want p < α for tests and value ≥ threshold for distances")
	}
}

func TestBadInputErrors(t *testing.T) {
	if _, err := PSI([]float64{1}, []float64{0.5, 0.5}); err == nil {
		t.Error("PSI of unequal lengths: want an error")
	}
	if _, err := JensenShannon([]float64{0, 0}, []float64{1, 0}, 2); err == nil {
		t.Error("JS of an empty reference: want an error")
	}
	if _, _, err := KS(nil, []float64{1}); err == nil {
		t.Error("KS of an empty sample: want an error")
	}
	if _, _, err := KS([]float64{math.NaN()}, []float64{1}); err == nil {
		t.Error("KS with NaN: want an error")
	}
	if _, err := Wasserstein([]float64{1}, []float64{1}, []float64{-1}, nil); err == nil {
		t.Error("Wasserstein with a negative weight: want an error")
	}
	if _, _, _, err := ChiSquareContingency([][]float64{{0, 1}, {0, 2}}); err == nil {
		t.Error("contingency with a zero column: want an error")
	}
}

func ok(t *testing.T) func(float64, error) float64 {
	return func(v float64, err error) float64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
