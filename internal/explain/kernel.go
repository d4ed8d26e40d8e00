package explain

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
)

// Func evaluates a model on rows of features and returns one row of outputs per row,
// all of one width. Kernel calls it once per explained row with every coalition's
// rows, so a served model sees big batches.
type Func func(ctx context.Context, rows [][]float64) ([][]float64, error)

// KernelOptions tune Kernel. The zero value is usable.
type KernelOptions struct {
	// MaxExact is the most features explained by enumerating all 2^F coalitions
	// (default 12: 4096 coalitions); above it, coalitions are sampled.
	MaxExact int
	// Samples is the number of sampled coalitions (default 2F+2048), taken in
	// complementary pairs.
	Samples int
	// Seed makes sampling repeatable.
	Seed uint64
	// MaxRows bounds the rows of one model call (coalitions × background rows);
	// default 1<<18.
	MaxRows int
	// MaxTotalRows bounds the rows of the whole explanation (explained rows ×
	// coalitions × background rows); default 1<<22.
	MaxTotalRows int
}

// MaxKernelFeatures bounds the features Kernel explains: its least-squares fit costs
// F² per coalition and F³ to solve.
const MaxKernelFeatures = 512

// Result holds the attributions of N rows over O outputs and F features.
type Result struct {
	Rows, Outputs, Features int
	// Phi is [Rows][Outputs][Features], row-major.
	Phi []float64
	// Expected is the value attributions start from, per output: the ensemble's
	// expected margin (TreeSHAP) or the mean of f over the background (KernelSHAP).
	Expected []float64
	// Pred is what was explained, [Rows][Outputs]: Expected plus the row's
	// attributions.
	Pred []float64
	// Exact is false when KernelSHAP sampled coalitions.
	Exact bool
	// Space is what was explained: "margin" (TreeSHAP: the ensemble's raw margin,
	// before Link) or "output" (KernelSHAP: what the model function returns).
	Space string
	// Link is what turns the margin into the model's output ("sigmoid", "softmax",
	// "identity", ...), when the caller knows it; "" otherwise.
	Link string
	// Coalitions is the number of coalitions KernelSHAP evaluated per row (0 for
	// TreeSHAP).
	Coalitions int
}

// Explain runs TreeSHAP on every row of x.
func (e *Ensemble) Explain(x [][]float64) (*Result, error) {
	r := &Result{Rows: len(x), Outputs: e.Outputs, Features: e.Features, Exact: true, Space: "margin",
		Phi: make([]float64, len(x)*e.Outputs*e.Features), Expected: e.ExpectedValue()}
	for i, row := range x {
		pred, err := e.SHAP(row, r.Phi[i*e.Outputs*e.Features:(i+1)*e.Outputs*e.Features])
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", i, err)
		}
		r.Pred = append(r.Pred, pred...)
	}
	return r, nil
}

// Kernel explains every row of x with KernelSHAP: coalition z's value is the mean
// of f over the background rows with the features in z taken from x, and the
// attributions are the Shapley-kernel-weighted least-squares fit of those values,
// constrained to add up to f(x) − E_bg f. With every coalition enumerated the fit is
// the exact Shapley values of that value function.
func Kernel(ctx context.Context, f Func, x, background [][]float64, opts KernelOptions) (*Result, error) {
	if len(x) == 0 {
		return nil, errors.New("no rows to explain")
	}
	feats := len(x[0])
	if feats == 0 {
		return nil, errors.New("rows have no features")
	}
	if feats > MaxKernelFeatures {
		return nil, fmt.Errorf("rows have %d features; KernelSHAP explains at most %d (its fit costs F² per coalition)", feats, MaxKernelFeatures)
	}
	if err := sameWidth("row", x, feats); err != nil {
		return nil, err
	}
	if len(background) == 0 {
		return nil, errors.New("no background rows")
	}
	if err := sameWidth("background row", background, feats); err != nil {
		return nil, err
	}
	opts = opts.withDefaults(feats)
	coal, exact := coalitions(feats, opts)
	if n := len(coal) * len(background); n > opts.MaxRows {
		return nil, fmt.Errorf("%d coalitions × %d background rows = %d rows per explained row, over the limit of %d: send fewer background rows",
			len(coal), len(background), n, opts.MaxRows)
	}
	if n := len(x) * len(coal) * len(background); n > opts.MaxTotalRows {
		return nil, fmt.Errorf("%d rows × %d coalitions × %d background rows = %d model rows, over the limit of %d: explain fewer rows at once",
			len(x), len(coal), len(background), n, opts.MaxTotalRows)
	}
	base, err := meanOutputs(ctx, f, background)
	if err != nil {
		return nil, err
	}
	r := &Result{Rows: len(x), Outputs: len(base), Features: feats, Expected: base, Exact: exact, Coalitions: len(coal), Space: "output"}
	for i, row := range x {
		phi, pred, err := kernelRow(ctx, f, row, background, coal, base)
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", i, err)
		}
		r.Phi = append(r.Phi, phi...)
		r.Pred = append(r.Pred, pred...)
	}
	return r, nil
}

func sameWidth(what string, rows [][]float64, n int) error {
	for i, r := range rows {
		if len(r) != n {
			return fmt.Errorf("%s %d has %d features, want %d", what, i, len(r), n)
		}
	}
	return nil
}

func (o KernelOptions) withDefaults(feats int) KernelOptions {
	if o.MaxExact <= 0 {
		o.MaxExact = 12
	}
	o.MaxExact = min(o.MaxExact, 30)
	if o.Samples <= 0 {
		o.Samples = 2*feats + 2048
	}
	if o.MaxRows <= 0 {
		o.MaxRows = 1 << 18
	}
	if o.MaxTotalRows <= 0 {
		o.MaxTotalRows = 1 << 22
	}
	return o
}

// meanOutputs is the mean of f over rows.
func meanOutputs(ctx context.Context, f Func, rows [][]float64) ([]float64, error) {
	out, err := call(ctx, f, rows)
	if err != nil {
		return nil, err
	}
	mean := make([]float64, len(out[0]))
	for _, o := range out {
		for k, v := range o {
			mean[k] += v / float64(len(out))
		}
	}
	return mean, nil
}

// call runs f and checks that it answered one row, of one width, per row.
func call(ctx context.Context, f Func, rows [][]float64) ([][]float64, error) {
	out, err := f(ctx, rows)
	if err != nil {
		return nil, err
	}
	if len(out) != len(rows) {
		return nil, fmt.Errorf("model answered %d rows for %d", len(out), len(rows))
	}
	for i, o := range out {
		if len(o) == 0 || len(o) != len(out[0]) {
			return nil, fmt.Errorf("model answered row %d with %d outputs, row 0 with %d", i, len(o), len(out[0]))
		}
	}
	return out, nil
}

// coalition is a subset of the features; weight is its weight in the regression.
type coalition struct {
	in     []bool
	size   int
	weight float64
}

// coalitions lists every proper, non-empty coalition with its Shapley kernel weight
// when the features are few enough, else samples of them (sizes drawn in proportion
// to the kernel's total weight per size, each with its complement), weighted equally.
func coalitions(feats int, opts KernelOptions) ([]coalition, bool) {
	if feats <= opts.MaxExact {
		var out []coalition
		for m := uint64(1); m < 1<<feats-1; m++ {
			c := coalition{in: make([]bool, feats), size: bits.OnesCount64(m)}
			for j := range feats {
				c.in[j] = m>>j&1 == 1
			}
			c.weight = kernelWeight(feats, c.size)
			out = append(out, c)
		}
		return out, true
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x5eed))
	sizeW := make([]float64, feats) // cumulative, sizes 1..F-1
	for s := 1; s < feats; s++ {
		sizeW[s] = sizeW[s-1] + float64(feats-1)/float64(s*(feats-s))
	}
	out := make([]coalition, 0, opts.Samples+1)
	for len(out) < opts.Samples {
		u := rng.Float64() * sizeW[feats-1]
		s := 1
		for sizeW[s] < u {
			s++
		}
		c := coalition{in: make([]bool, feats), size: s, weight: 1}
		for _, j := range rng.Perm(feats)[:s] {
			c.in[j] = true
		}
		comp := coalition{in: make([]bool, feats), size: feats - s, weight: 1}
		for j := range feats {
			comp.in[j] = !c.in[j]
		}
		out = append(out, c, comp)
	}
	return out, false
}

// kernelWeight is the Shapley kernel (F−1) / (C(F,s)·s·(F−s)).
func kernelWeight(feats, s int) float64 {
	lc, _ := math.Lgamma(float64(feats + 1))
	la, _ := math.Lgamma(float64(s + 1))
	lb, _ := math.Lgamma(float64(feats - s + 1))
	return float64(feats-1) / (math.Exp(lc-la-lb) * float64(s) * float64(feats-s))
}
