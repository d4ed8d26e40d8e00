package stats

import "fmt"

// Method names a drift statistic. Distances drift at value ≥ threshold; tests (KS, χ²,
// Z) report a p-value and drift at p < threshold (monitoring.md §1.3).
type Method string

// The methods.
const (
	MethodKS          Method = "ks"
	MethodWasserstein Method = "wasserstein" // normed: W1 / max(std_pop(ref), 0.001)
	MethodPSI         Method = "psi"
	MethodJS          Method = "jensenshannon"
	MethodHellinger   Method = "hellinger"
	MethodLInf        Method = "linf"
	MethodChiSquare   Method = "chisquare"
	MethodZ           Method = "ztest"
)

// ParseMethod checks a method name from configuration.
func ParseMethod(s string) (Method, error) {
	switch m := Method(s); m {
	case MethodKS, MethodWasserstein, MethodPSI, MethodJS, MethodHellinger, MethodLInf, MethodChiSquare, MethodZ:
		return m, nil
	}
	return "", fmt.Errorf("unknown drift method %q (want ks, wasserstein, psi, jensenshannon, hellinger, linf, chisquare or ztest)", s)
}

// IsTest reports whether the method's value is a p-value.
func (m Method) IsTest() bool { return m == MethodKS || m == MethodChiSquare || m == MethodZ }

// Numeric reports whether the method needs an ordered (numeric) feature.
func (m Method) Numeric() bool { return m == MethodKS || m == MethodWasserstein }

// Drifted applies the method's operator: p < threshold for tests, value ≥ threshold
// for distances.
func (m Method) Drifted(value, threshold float64) bool {
	if m.IsTest() {
		return value < threshold
	}
	return value >= threshold
}

// DefaultThreshold is Evidently's default threshold for a method: α = 0.05 for tests,
// 0.1 for the distances (monitoring.md §1.1), 0.3 for L∞ (Vertex) and 0.4 for Hellinger
// (whylogs' DRIFT band).
func DefaultThreshold(m Method) float64 {
	switch m {
	case MethodKS, MethodChiSquare, MethodZ:
		return 0.05
	case MethodLInf:
		return 0.3
	case MethodHellinger:
		return 0.4
	}
	return 0.1
}

// DefaultMethod is Evidently's default method choice (registry.py
// _get_default_stattest, monitoring.md §1.4) for a numeric or categorical feature whose
// reference has refRows rows and whose reference ∪ current has nUnique values.
func DefaultMethod(numeric bool, refRows, nUnique int) Method {
	if refRows > 1000 {
		if numeric && nUnique > 5 {
			return MethodWasserstein
		}
		return MethodJS
	}
	switch {
	case nUnique <= 2:
		return MethodZ
	case !numeric || nUnique <= 5:
		return MethodChiSquare
	}
	return MethodKS
}
