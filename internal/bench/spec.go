package bench

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/internal/tensor"
	"golang.org/x/net/http/httpguts"
)

// maxLevels bounds a sweep so a typo such as 1:100000:+1 fails at once instead of
// running for days.
const maxLevels = 1000

// ParseConcurrency reads a concurrency sweep: "N", "start:end" (step +1) or
// "start:end:step", where step is "+N" or plain "N" (add N, as perf_analyzer's
// --concurrency-range) or "xN" (multiply by N). The end level is included when the
// steps land on it, and a sweep that steps past end stops before it.
func ParseConcurrency(spec string) ([]int, error) {
	parts := strings.Split(strings.TrimSpace(spec), ":")
	if len(parts) > 3 {
		return nil, fmt.Errorf("concurrency %q: want N, start:end or start:end:step", spec)
	}
	start, err := positive(parts[0], "start", spec)
	if err != nil {
		return nil, err
	}
	if len(parts) == 1 {
		return []int{start}, nil
	}
	end, err := positive(parts[1], "end", spec)
	if err != nil {
		return nil, err
	}
	if end < start {
		return nil, fmt.Errorf("concurrency %q: end %d is below start %d", spec, end, start)
	}
	mul, step := false, 1
	if len(parts) == 3 {
		var s string
		s, mul = splitStep(parts[2])
		if step, err = positive(s, "step", spec); err != nil {
			return nil, err
		}
		if mul && step < 2 {
			return nil, fmt.Errorf("concurrency %q: a multiplying step must be at least x2", spec)
		}
	}
	var levels []int
	for c := start; c <= end; {
		if len(levels) == maxLevels {
			return nil, fmt.Errorf("concurrency %q: more than %d levels", spec, maxLevels)
		}
		levels = append(levels, c)
		if mul {
			c *= step
		} else {
			c += step
		}
	}
	return levels, nil
}

// ParseRates reads open-loop request rates, requests per second: "R", "start:end"
// (step 1) or "start:end:step", where step is "+S" or plain "S" (add S, as
// perf_analyzer's --request-rate-range) or "xF" (multiply by F > 1). The end rate is
// included when the steps land on it.
func ParseRates(spec string) ([]float64, error) {
	parts := strings.Split(strings.TrimSpace(spec), ":")
	if len(parts) > 3 {
		return nil, fmt.Errorf("request rate %q: want R, start:end or start:end:step", spec)
	}
	num := func(s, what string) (float64, error) {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || !(v > 0) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("request rate %q: %s %q is not a positive number", spec, what, s)
		}
		return v, nil
	}
	start, err := num(parts[0], "start")
	if err != nil || len(parts) == 1 {
		return []float64{start}, err
	}
	end, err := num(parts[1], "end")
	if err != nil {
		return nil, err
	}
	if end < start {
		return nil, fmt.Errorf("request rate %q: end %g is below start %g", spec, end, start)
	}
	step, mul := "1", false
	if len(parts) == 3 {
		step, mul = splitStep(parts[2])
	}
	by, err := num(step, "step")
	if err != nil {
		return nil, err
	}
	if mul && by <= 1 {
		return nil, fmt.Errorf("request rate %q: a multiplying step must be above x1", spec)
	}
	var rates []float64
	// Each rate is computed from start, not from the one before, so steps such as 0.1
	// do not drift; 1e-9 of slack lets the end rate in.
	for i := 0; ; i++ {
		r := start + float64(i)*by
		if mul {
			r = start * math.Pow(by, float64(i))
		}
		if r > end*(1+1e-9) {
			return rates, nil
		}
		if len(rates) == maxLevels {
			return nil, fmt.Errorf("request rate %q: more than %d levels", spec, maxLevels)
		}
		rates = append(rates, r)
	}
}

// ParseHeaders reads -H values, "Name: value" each (perf_analyzer's form), into a
// header; a name may repeat.
func ParseHeaders(specs []string) (http.Header, error) {
	h := http.Header{}
	for _, s := range specs {
		name, value, ok := strings.Cut(s, ":")
		name = strings.TrimSpace(name)
		if !ok || !httpguts.ValidHeaderFieldName(name) {
			return nil, fmt.Errorf("header %q: want Name:value", s)
		}
		value = strings.TrimSpace(value)
		if !httpguts.ValidHeaderFieldValue(value) {
			return nil, fmt.Errorf("header %q: the value has characters a header cannot carry", s)
		}
		h.Add(name, value)
	}
	return h, nil
}

// splitStep reads a sweep's step: "xN" or "*N" multiplies by N, "+N" or "N" adds N.
func splitStep(s string) (n string, mul bool) {
	switch {
	case strings.HasPrefix(s, "x"), strings.HasPrefix(s, "*"):
		return s[1:], true
	case strings.HasPrefix(s, "+"):
		return s[1:], false
	}
	return s, false
}

func positive(s, what, spec string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("concurrency %q: %s %q is not a positive integer", spec, what, s)
	}
	return n, nil
}

// ParseShape reads one --shape value, "NAME:d1,d2,...": the dimensions an input's
// variable (-1) dimensions take, without the batch dimension for a batching model (as
// perf_analyzer's --shape).
func ParseShape(s string) (string, tensor.Shape, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || i == len(s)-1 {
		return "", nil, fmt.Errorf("shape %q: want NAME:d1,d2,...", s)
	}
	name := s[:i]
	var shape tensor.Shape
	for _, f := range strings.Split(s[i+1:], ",") {
		d, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || d < 0 {
			return "", nil, fmt.Errorf("shape %q: dimension %q is not a non-negative integer", s, f)
		}
		shape = append(shape, d)
	}
	return name, shape, nil
}
