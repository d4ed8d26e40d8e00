package explain

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// model wraps a row function as a batched Func, counting calls and rows.
type model struct {
	f           func(x []float64) []float64
	calls, rows int
}

func (m *model) eval(_ context.Context, rows [][]float64) ([][]float64, error) {
	m.calls++
	m.rows += len(rows)
	out := make([][]float64, len(rows))
	for i, r := range rows {
		out[i] = m.f(r)
	}
	return out, nil
}

func randomRows(rng *rand.Rand, n, feats int) [][]float64 {
	rows := make([][]float64, n)
	for i := range rows {
		rows[i] = make([]float64, feats)
		for j := range rows[i] {
			rows[i][j] = rng.NormFloat64() * 3
		}
	}
	return rows
}

// TestKernelOnLinearModelIsExact: for f(x) = w·x + c the attributions are exactly
// w_i (x_i − E_bg[x_i]), whether coalitions are enumerated (F=5) or sampled (F=14).
func TestKernelOnLinearModelIsExact(t *testing.T) {
	for _, feats := range []int{1, 2, 5, 14} {
		rng := rand.New(rand.NewPCG(uint64(feats), 9))
		w := make([]float64, feats)
		for j := range w {
			w[j] = rng.NormFloat64()
		}
		m := &model{f: func(x []float64) []float64 {
			s := 0.7
			for j, v := range x {
				s += w[j] * v
			}
			return []float64{s, -2 * s}
		}}
		x, bg := randomRows(rng, 3, feats), randomRows(rng, 7, feats)
		r, err := Kernel(context.Background(), m.eval, x, bg, KernelOptions{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		if r.Exact != (feats <= 12) {
			t.Errorf("F=%d: Exact = %v", feats, r.Exact)
		}
		if m.calls != 1+len(x) {
			t.Errorf("F=%d: %d model calls, want one for the background and one per row (%d)", feats, m.calls, 1+len(x))
		}
		for i, row := range x {
			for j := range feats {
				mean := 0.0
				for _, b := range bg {
					mean += b[j] / float64(len(bg))
				}
				want := w[j] * (row[j] - mean)
				for k, scale := range []float64{1, -2} {
					if got := r.Phi[(i*2+k)*feats+j]; math.Abs(got-scale*want) > 1e-9 {
						t.Errorf("F=%d row %d output %d feature %d: φ = %v, want %v", feats, i, k, j, got, scale*want)
					}
				}
			}
		}
	}
}

// TestKernelExactIsShapley: on a nonlinear model with interactions, the exact run
// equals the Shapley values of the background-mean value function (enumerated by
// brute force) and is locally accurate.
func TestKernelExactIsShapley(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const feats = 6
	f := func(x []float64) []float64 {
		return []float64{math.Tanh(x[0]*x[1]) + x[2]*x[2] - math.Max(x[3], x[4])*x[5]}
	}
	m := &model{f: f}
	x, bg := randomRows(rng, 2, feats), randomRows(rng, 4, feats)
	r, err := Kernel(context.Background(), m.eval, x, bg, KernelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Coalitions != 1<<feats-2 {
		t.Errorf("Coalitions = %d, want %d", r.Coalitions, 1<<feats-2)
	}
	for i, row := range x {
		want := shapley(feats, func(mask uint64) float64 {
			v := 0.0
			for _, b := range bg {
				z := make([]float64, feats)
				for j := range z {
					z[j] = b[j]
					if mask>>j&1 == 1 {
						z[j] = row[j]
					}
				}
				v += f(z)[0] / float64(len(bg))
			}
			return v
		})
		sum := r.Expected[0]
		for j := range feats {
			got := r.Phi[i*feats+j]
			if math.Abs(got-want[j]) > 1e-9 {
				t.Errorf("row %d feature %d: KernelSHAP %v, brute-force Shapley %v", i, j, got, want[j])
			}
			sum += got
		}
		if fx := f(row)[0]; math.Abs(sum-fx) > 1e-9 || r.Pred[i] != fx {
			t.Errorf("row %d: E + Σφ = %v, Pred %v, f(x) = %v", i, sum, r.Pred[i], fx)
		}
	}
}

// TestKernelSampledIsSeededAndLocallyAccurate: with sampling, the same seed gives the
// same answer and attributions still add up to f(x) − E.
func TestKernelSampledIsSeededAndLocallyAccurate(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const feats = 15
	f := func(x []float64) []float64 { return []float64{math.Sin(x[0]*x[1]) + x[14]*x[3] + x[7]} }
	x, bg := randomRows(rng, 1, feats), randomRows(rng, 3, feats)
	run := func(seed uint64) *Result {
		r, err := Kernel(context.Background(), (&model{f: f}).eval, x, bg, KernelOptions{Seed: seed, Samples: 600})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b, c := run(1), run(1), run(2)
	sum := a.Expected[0]
	same, differs := true, false
	for j := range feats {
		sum += a.Phi[j]
		same = same && a.Phi[j] == b.Phi[j]
		differs = differs || a.Phi[j] != c.Phi[j]
	}
	if !same || !differs {
		t.Errorf("seed 1 twice same = %v; seeds 1 and 2 differ = %v", same, differs)
	}
	if math.Abs(sum-f(x[0])[0]) > 1e-9 {
		t.Errorf("E + Σφ = %v, f(x) = %v", sum, f(x[0])[0])
	}
	if a.Exact || a.Coalitions < 600 {
		t.Errorf("Exact = %v, Coalitions = %d", a.Exact, a.Coalitions)
	}
}

func TestKernelRefusesBadInput(t *testing.T) {
	id := (&model{f: func(x []float64) []float64 { return x[:1] }}).eval
	short := func(_ context.Context, rows [][]float64) ([][]float64, error) {
		return make([][]float64, len(rows)-1), nil
	}
	failing := func(context.Context, [][]float64) ([][]float64, error) { return nil, errors.New("model down") }
	two := [][]float64{{1, 2}}
	for _, tc := range []struct {
		name  string
		f     Func
		x, bg [][]float64
		opts  KernelOptions
		want  string
	}{
		{"no rows", id, nil, two, KernelOptions{}, "no rows to explain"},
		{"ragged rows", id, [][]float64{{1, 2}, {1}}, two, KernelOptions{}, "row 1 has 1 features, want 2"},
		{"no background", id, two, nil, KernelOptions{}, "no background rows"},
		{"too many features", id, [][]float64{make([]float64, MaxKernelFeatures+1)}, two, KernelOptions{}, "at most 512"},
		{"background width", id, two, [][]float64{{1, 2, 3}}, KernelOptions{}, "background row 0 has 3 features, want 2"},
		{"too many rows", id, two, two, KernelOptions{MaxRows: 1}, "over the limit of 1"},
		{"too many rows in all", id, [][]float64{{1, 2}, {3, 4}}, two, KernelOptions{MaxTotalRows: 3}, "explain fewer rows at once"},
		{"model answers too few rows", short, two, two, KernelOptions{}, "answered 0 rows for 1"},
		{"model fails", failing, two, two, KernelOptions{}, "model down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Kernel(context.Background(), tc.f, tc.x, tc.bg, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Kernel() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
