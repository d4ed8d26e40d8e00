package explain

import (
	"context"
	"fmt"
	"math"
)

// kernelRow explains one row: it evaluates every coalition against the background in
// one call of f (and x itself, last), then fits the attributions of each output.
func kernelRow(ctx context.Context, f Func, x []float64, background [][]float64, coal []coalition, base []float64) (phi, pred []float64, err error) {
	feats := len(x)
	flat := make([]float64, (len(coal)*len(background)+1)*feats)
	rows := make([][]float64, 0, len(coal)*len(background)+1)
	for _, c := range coal {
		for _, b := range background {
			r := flat[len(rows)*feats : (len(rows)+1)*feats]
			for j := range feats {
				r[j] = b[j]
				if c.in[j] {
					r[j] = x[j]
				}
			}
			rows = append(rows, r)
		}
	}
	r := flat[len(rows)*feats:]
	copy(r, x)
	rows = append(rows, r)
	out, err := call(ctx, f, rows)
	if err != nil {
		return nil, nil, err
	}
	outs := len(base)
	if len(out[0]) != outs {
		return nil, nil, fmt.Errorf("model answered %d outputs per row here, %d for the background", len(out[0]), outs)
	}
	pred = out[len(out)-1]
	values := make([][]float64, len(coal)) // [coalition][output]: mean over the background
	for ci := range coal {
		v := make([]float64, outs)
		for bi := range background {
			for k, o := range out[ci*len(background)+bi] {
				v[k] += o / float64(len(background))
			}
		}
		values[ci] = v
	}
	phi = make([]float64, outs*feats)
	for k := range outs {
		if err := fit(phi[k*feats:(k+1)*feats], coal, values, k, base[k], pred[k]-base[k]); err != nil {
			return nil, nil, fmt.Errorf("output %d: %w", k, err)
		}
	}
	return phi, pred, nil
}

// fit solves the weighted least squares of the coalitions' values (output k) on
// their membership, with the attributions constrained to sum to delta: the last
// feature's attribution is delta minus the others', which leaves an unconstrained fit
// of F−1 unknowns (the normal equations, solved by Gaussian elimination).
func fit(phi []float64, coal []coalition, values [][]float64, k int, base, delta float64) error {
	feats := len(phi)
	if feats == 1 {
		phi[0] = delta
		return nil
	}
	n := feats - 1
	a := make([]float64, n*n)
	b := make([]float64, n)
	xs := make([]float64, n)
	for ci, c := range coal {
		last := 0.0
		if c.in[n] {
			last = 1
		}
		for i := range n {
			xs[i] = -last
			if c.in[i] {
				xs[i]++
			}
		}
		y := values[ci][k] - base - last*delta
		for i := range n {
			if xs[i] == 0 {
				continue
			}
			wx := c.weight * xs[i]
			b[i] += wx * y
			for j := range n {
				a[i*n+j] += wx * xs[j]
			}
		}
	}
	if err := solve(a, b, n); err != nil {
		return err
	}
	sum := 0.0
	for i := range n {
		phi[i] = b[i]
		sum += b[i]
	}
	phi[n] = delta - sum
	return nil
}

// solve solves a·x = b in place (x in b) by Gaussian elimination with partial
// pivoting; a singular system means the coalitions do not pin the attributions down.
func solve(a, b []float64, n int) error {
	scale := 0.0
	for _, v := range a {
		scale = max(scale, math.Abs(v))
	}
	for col := range n {
		p := col
		for r := col + 1; r < n; r++ {
			if math.Abs(a[r*n+col]) > math.Abs(a[p*n+col]) {
				p = r
			}
		}
		if math.Abs(a[p*n+col]) <= 1e-12*scale {
			return fmt.Errorf("the sampled coalitions leave feature %d's attribution undetermined: sample more coalitions", col)
		}
		if p != col {
			for j := range n {
				a[p*n+j], a[col*n+j] = a[col*n+j], a[p*n+j]
			}
			b[p], b[col] = b[col], b[p]
		}
		for r := col + 1; r < n; r++ {
			m := a[r*n+col] / a[col*n+col]
			if m == 0 {
				continue
			}
			for j := col; j < n; j++ {
				a[r*n+j] -= m * a[col*n+j]
			}
			b[r] -= m * b[col]
		}
	}
	for col := n - 1; col >= 0; col-- {
		s := b[col]
		for j := col + 1; j < n; j++ {
			s -= a[col*n+j] * b[j]
		}
		b[col] = s / a[col*n+col]
	}
	return nil
}
