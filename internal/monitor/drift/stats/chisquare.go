package stats

import (
	"fmt"
	"math"
)

// ChiSquareGoF is Pearson's goodness-of-fit test Σ(obs−exp)²/exp with df = k−1 and its
// p-value. An expected count of 0 with a positive observed count gives χ² = +Inf and
// p = 0 (scipy's answer to a category absent from the reference); 0 against 0 adds
// nothing.
func ChiSquareGoF(obs, exp []float64) (chi2, p float64, err error) {
	if len(obs) != len(exp) {
		return 0, 0, fmt.Errorf("χ²: %d observed and %d expected counts", len(obs), len(exp))
	}
	if len(obs) < 2 {
		return 0, 0, fmt.Errorf("χ²: needs at least 2 categories, got %d", len(obs))
	}
	for i := range obs {
		if obs[i] < 0 || exp[i] < 0 || math.IsNaN(obs[i]+exp[i]) || math.IsInf(obs[i]+exp[i], 0) {
			return 0, 0, fmt.Errorf("χ²: category %d has observed %v, expected %v", i, obs[i], exp[i])
		}
		switch {
		case exp[i] > 0:
			chi2 += (obs[i] - exp[i]) * (obs[i] - exp[i]) / exp[i]
		case obs[i] > 0:
			chi2 = math.Inf(1)
		}
	}
	return chi2, ChiSquareSF(chi2, len(obs)-1), nil
}

// ChiSquareEvidently is Evidently's chisquare stattest: the goodness-of-fit of the
// current counts against the reference counts scaled to the current total,
// f_exp = ref·(m/n), over the union of categories given in the same order.
func ChiSquareEvidently(ref, cur []float64) (chi2, p float64, err error) {
	if len(ref) != len(cur) {
		return 0, 0, fmt.Errorf("χ²: %d reference and %d current counts", len(ref), len(cur))
	}
	var n, m float64
	for i := range ref {
		n, m = n+ref[i], m+cur[i]
	}
	if n == 0 || m == 0 {
		return 0, 0, ErrEmpty
	}
	exp := make([]float64, len(ref))
	for i, r := range ref {
		exp[i] = r * m / n
	}
	return ChiSquareGoF(cur, exp)
}

// ChiSquareContingency is the χ² test of independence of an r×k table of counts
// (scipy.stats.chi2_contingency): expected counts from the margins, df = (r−1)(k−1),
// with Yates' continuity correction when df = 1. Columns or rows that are all zero
// are an error, as in scipy.
func ChiSquareContingency(table [][]float64) (chi2, p float64, df int, err error) {
	if len(table) < 2 || len(table[0]) < 2 {
		return 0, 0, 0, fmt.Errorf("χ² contingency: table must be at least 2×2")
	}
	rows, cols := make([]float64, len(table)), make([]float64, len(table[0]))
	var total float64
	for i, row := range table {
		if len(row) != len(cols) {
			return 0, 0, 0, fmt.Errorf("χ² contingency: row %d has %d columns, row 0 has %d", i, len(row), len(cols))
		}
		for j, v := range row {
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return 0, 0, 0, fmt.Errorf("χ² contingency: cell [%d][%d] is %v", i, j, v)
			}
			rows[i] += v
			cols[j] += v
			total += v
		}
	}
	for i, s := range rows {
		if s == 0 {
			return 0, 0, 0, fmt.Errorf("χ² contingency: row %d is all zeros", i)
		}
	}
	for j, s := range cols {
		if s == 0 {
			return 0, 0, 0, fmt.Errorf("χ² contingency: column %d is all zeros", j)
		}
	}
	df = (len(rows) - 1) * (len(cols) - 1)
	for i, row := range table {
		for j, v := range row {
			e := rows[i] * cols[j] / total
			d := math.Abs(v - e)
			if df == 1 {
				d = math.Max(0, d-0.5)
			}
			chi2 += d * d / e
		}
	}
	return chi2, ChiSquareSF(chi2, df), df, nil
}
