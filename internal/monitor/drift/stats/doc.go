// Package stats holds the drift statistics, computed exactly on samples or on
// proportions, with the definitions pinned by docs research monitoring.md §1.2: PSI with
// Evidently's epsilon rule, two-sample Kolmogorov–Smirnov (exact lattice-path p up to
// 10 000 per side, Stephens' asymptotic form beyond), χ² goodness-of-fit and
// contingency, Jensen–Shannon distance, Hellinger, L∞, Wasserstein-1 and its normed
// form, the two-proportion Z-test and NDCG, plus Evidently's default method choice.
// It is pure maths: no I/O, no state.
package stats
