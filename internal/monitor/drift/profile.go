package drift

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
)

// Kind is how a feature's values are compared: ordered numbers or unordered categories.
type Kind string

// The kinds.
const (
	Numeric     Kind = "numeric"
	Categorical Kind = "categorical"
)

// Limits of the fixed-size state.
const (
	// QuantileBins is the number of baseline-quantile bins of a numeric feature with many
	// distinct values (fewer when quantiles coincide).
	QuantileBins = 100
	// DiscreteMax is the most distinct values a numeric feature may have and still get
	// one bin per value (so χ² and Z see the values themselves).
	DiscreteMax = 20
	// MaxCategories caps a categorical feature's counts map; later categories share the
	// "other" bucket.
	MaxCategories = 1000
	// SampleCap is how many values per feature a profile builder keeps (a uniform
	// reservoir) to place the quantile bins; the counts are over the sample too.
	SampleCap = 100000
	// uniqueCap bounds the exact distinct count; beyond it NUnique reads uniqueCap+1.
	uniqueCap = 1000
	// maxEdges bounds an uploaded profile's bins (the lookup grid indexes them in 16 bits).
	maxEdges = 4097
)

// Profile is a baseline: per feature, the binned distribution the windows are compared
// with. It is the JSON a baseline is stored and uploaded as (ReadProfile, WriteJSON).
type Profile struct {
	Rows     int64                      `json:"rows"` // rows the profile was built from
	Features map[string]*FeatureProfile `json:"features"`
}

// FeatureProfile is one feature's baseline.
type FeatureProfile struct {
	Kind    Kind  `json:"kind"`
	N       int64 `json:"n"`        // values binned (a uniform sample when the data had more than SampleCap)
	Invalid int64 `json:"invalid"`  // NaN, ±Inf and empty values, dropped
	NUnique int   `json:"n_unique"` // distinct valid values, 1001 meaning "more than 1000"

	// Numeric: Edges are the bin edges; Counts and Sums have len(Edges)+1 slots: below
	// Edges[0], the bins [e_i, e_i+1) (the last one closed), above the last edge. Sums
	// give each slot's centroid for Wasserstein. Discrete marks one bin per value.
	Edges    []float64 `json:"edges,omitempty"`
	Counts   []int64   `json:"counts,omitempty"`
	Sums     []float64 `json:"sums,omitempty"`
	Discrete bool      `json:"discrete,omitempty"`
	Mean     float64   `json:"mean,omitempty"`
	Std      float64   `json:"std,omitempty"` // population standard deviation
	Min      float64   `json:"min,omitempty"`
	Max      float64   `json:"max,omitempty"`

	// Categorical: counts per category, at most MaxCategories; Other counts the rest.
	Categories map[string]int64 `json:"categories,omitempty"`
	Other      int64            `json:"other,omitempty"`
}

// ReadProfile decodes and validates a Profile's JSON.
func ReadProfile(r io.Reader) (*Profile, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var p Profile
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Validate checks that every feature's bins are consistent, naming the first problem
// of each feature.
func (p *Profile) Validate() error {
	if len(p.Features) == 0 {
		return errors.New("profile: no features")
	}
	var errs []error
	for _, name := range p.Names() {
		if err := p.Features[name].validate(); err != nil {
			errs = append(errs, fmt.Errorf("profile: feature %q: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func (f *FeatureProfile) validate() error {
	if f == nil {
		return errors.New("null")
	}
	switch f.Kind {
	case Numeric:
		if len(f.Edges) > maxEdges {
			return fmt.Errorf("%d edges, at most %d", len(f.Edges), maxEdges)
		}
		if len(f.Edges) < 2 || len(f.Counts) != len(f.Edges)+1 || len(f.Sums) != len(f.Counts) {
			return fmt.Errorf("%d edges need %d counts and sums, got %d and %d", len(f.Edges), len(f.Edges)+1, len(f.Counts), len(f.Sums))
		}
		if !finite(f.Mean) || !finite(f.Std) || !allFinite(f.Sums) {
			return errors.New("mean, std and sums must be finite")
		}
		for i, e := range f.Edges {
			single := len(f.Edges) == 2 // [u, u]: a single-valued feature
			if math.IsNaN(e) || math.IsInf(e, 0) || i > 0 && (e < f.Edges[i-1] || e == f.Edges[i-1] && !single) {
				return fmt.Errorf("edge %d (%v) must be finite and above the previous one", i, e)
			}
		}
	case Categorical:
		if len(f.Categories) > MaxCategories {
			return fmt.Errorf("%d categories, at most %d", len(f.Categories), MaxCategories)
		}
	default:
		return fmt.Errorf("kind %q: want numeric or categorical", f.Kind)
	}
	var n int64
	for _, c := range append(append([]int64(nil), f.Counts...), f.Other) {
		if c < 0 {
			return fmt.Errorf("negative count %d", c)
		}
		n += c
	}
	for _, c := range f.Categories {
		if c < 0 {
			return fmt.Errorf("negative count %d", c)
		}
		n += c
	}
	if n != f.N {
		return fmt.Errorf("counts add up to %d, n is %d", n, f.N)
	}
	return nil
}

// Names lists the profile's features in order.
func (p *Profile) Names() []string {
	names := make([]string, 0, len(p.Features))
	for n := range p.Features {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ProfileOptions says how to read a baseline's columns.
type ProfileOptions struct {
	// Categorical names the columns to read as categories even when they hold numbers.
	Categorical map[string]bool
	// Rename maps a column of the file to a feature name.
	Rename map[string]string
}

// builder accumulates a profile from values one at a time.
type builder struct {
	opt  ProfileOptions
	rows int64
	cols map[string]*colBuilder
	rng  *rand.Rand
}

type colBuilder struct {
	kind    Kind
	seen    int64 // valid values seen
	invalid int64
	sample  []float64
	cats    map[string]int64
	other   int64
}

func newBuilder(opt ProfileOptions) *builder {
	return &builder{opt: opt, cols: map[string]*colBuilder{}, rng: rand.New(rand.NewPCG(1, 2))}
}

// col returns the column's builder; its kind is fixed by its first valid value
// (kind "" only counts missing values so far) or by ProfileOptions.Categorical.
func (b *builder) col(name string, kind Kind) *colBuilder {
	c := b.cols[name]
	if c == nil {
		c = &colBuilder{}
		b.cols[name] = c
	}
	if b.opt.Categorical[name] && kind != "" {
		kind = Categorical
	}
	if c.kind == "" && kind != "" {
		c.kind = kind
		if kind == Categorical {
			c.cats = map[string]int64{}
		}
	}
	return c
}

// text adds a value read as text: a number for a numeric column, a category for a
// categorical one; "" is a missing value. where names the row for errors.
func (b *builder) text(name, s string, where func() string) error {
	if s == "" {
		b.col(name, "").invalid++
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	kind := Numeric
	if err != nil {
		kind = Categorical
	}
	c := b.col(name, kind)
	if c.kind == Categorical {
		if err == nil && b.opt.Categorical[name] {
			s = strconv.FormatFloat(v, 'g', -1, 64) // as live integer features are named
		}
		c.addCategory(s)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s, column %q: %q is not a number (the column is numeric from its first value)", where(), name, s)
	}
	c.addNumber(v, b.rng)
	return nil
}

func (c *colBuilder) addCategory(s string) {
	if _, ok := c.cats[s]; ok || len(c.cats) < MaxCategories {
		c.cats[s]++
	} else {
		c.other++
	}
	c.seen++
}

func (c *colBuilder) addNumber(v float64, rng *rand.Rand) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		c.invalid++
		return
	}
	c.seen++
	if len(c.sample) < SampleCap {
		c.sample = append(c.sample, v)
		return
	}
	if j := rng.Int64N(c.seen); j < SampleCap { // Algorithm R: a uniform sample
		c.sample[j] = v
	}
}

// profile finishes the builder; a file without any value is an error.
func (b *builder) profile() (*Profile, error) {
	if b.rows == 0 || len(b.cols) == 0 {
		return nil, errors.New("no rows")
	}
	p := &Profile{Rows: b.rows, Features: map[string]*FeatureProfile{}}
	for name, c := range b.cols {
		if b.opt.Rename[name] != "" {
			name = b.opt.Rename[name]
		}
		if c.kind == Categorical {
			p.Features[name] = &FeatureProfile{Kind: Categorical, N: c.seen, Invalid: c.invalid,
				NUnique: len(c.cats) + int(min(c.other, 1)), Categories: c.cats, Other: c.other}
			continue
		}
		f := numericProfile(c.sample, c.invalid)
		if !finite(f.Mean) || !finite(f.Std) || !allFinite(f.Sums) {
			return nil, fmt.Errorf("column %q: values too large: their sums overflow float64", name)
		}
		p.Features[name] = f
	}
	return p, nil
}

// numericProfile bins a sample: one bin per value when it has at most DiscreteMax
// distinct values, else QuantileBins baseline-quantile bins (coinciding quantiles
// merged). An all-invalid column gets no bins and reports insufficient data.
func numericProfile(x []float64, invalid int64) *FeatureProfile {
	f := &FeatureProfile{Kind: Numeric, N: int64(len(x)), Invalid: invalid}
	if len(x) == 0 {
		f.Edges, f.Counts, f.Sums = []float64{0, 0}, []int64{0, 0, 0}, []float64{0, 0, 0}
		return f
	}
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	uniq := distinct(s)
	f.NUnique = min(len(uniq), uniqueCap+1)
	f.Min, f.Max = s[0], s[len(s)-1]
	if len(uniq) <= DiscreteMax {
		f.Discrete, f.Edges = true, midEdges(uniq)
	} else {
		f.Edges = quantileEdges(s)
	}
	bn := newBinner(f.Edges)
	f.Counts, f.Sums = make([]int64, len(f.Edges)+1), make([]float64, len(f.Edges)+1)
	var sum float64
	for _, v := range x {
		k := bn.slot(v)
		f.Counts[k]++
		f.Sums[k] += v
		sum += v
	}
	f.Mean = sum / float64(len(x))
	var ss float64
	for _, v := range x {
		ss += (v - f.Mean) * (v - f.Mean)
	}
	f.Std = math.Sqrt(ss / float64(len(x)))
	return f
}

func distinct(sorted []float64) []float64 {
	var u []float64
	for i, v := range sorted {
		if i == 0 || v != sorted[i-1] {
			u = append(u, v)
			if len(u) > uniqueCap {
				break
			}
		}
	}
	return u
}

// midEdges gives one bin per value: [u0, m01), [m01, m12), …, [m, u_last]; a single
// value is a zero-width bin [u, u] (only equal values fall in it).
func midEdges(u []float64) []float64 {
	e := []float64{u[0]}
	for i := 1; i < len(u); i++ {
		e = append(e, u[i-1]/2+u[i]/2) // not u+(v−u)/2: v−u overflows for ±1e308
	}
	return append(e, u[len(u)-1])
}

func quantileEdges(s []float64) []float64 {
	var e []float64
	for i := 0; i <= QuantileBins; i++ {
		q := quantile(s, float64(i)/QuantileBins)
		if len(e) == 0 || q > e[len(e)-1] {
			e = append(e, q)
		}
	}
	return e
}

func quantile(s []float64, q float64) float64 {
	h := q * float64(len(s)-1)
	lo := int(h)
	if lo+1 >= len(s) {
		return s[len(s)-1]
	}
	f := h - float64(lo)
	if f == 0 {
		return s[lo]
	}
	return s[lo]*(1-f) + s[lo+1]*f // no difference of extremes: it could overflow
}

func allFinite(x []float64) bool {
	for _, v := range x {
		if !finite(v) {
			return false
		}
	}
	return true
}
