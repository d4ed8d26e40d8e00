package llmbench

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
)

// Result is a run's measurements. Its JSON uses the keys of vLLM's result file
// (duration, completed, request_throughput, mean_ttft_ms, p99_itl_ms, ...), so the
// two can be compared by the same scripts. Throughputs are per second of the run's
// wall time (Duration).
type Result struct {
	Duration             float64  `json:"duration"` // seconds, from the first send to the last answer
	Completed            int      `json:"completed"`
	Failed               int      `json:"failed"`
	TotalInputTokens     int      `json:"total_input_tokens"`
	TotalOutputTokens    int      `json:"total_output_tokens"`
	RequestThroughput    float64  `json:"request_throughput"`
	RequestGoodput       *float64 `json:"request_goodput"` // null when no SLO was given
	OutputThroughput     float64  `json:"output_throughput"`
	TotalTokenThroughput float64  `json:"total_token_throughput"`

	// Latencies in milliseconds; JSON flattens each as mean_ttft_ms, median_ttft_ms,
	// std_ttft_ms and p{P}_ttft_ms.
	TTFT, TPOT, ITL, E2EL Stats `json:"-"`

	// Per request, in send order (failed requests have 0 and nil).
	InputLens  []int       `json:"input_lens"`
	OutputLens []int       `json:"output_lens"`
	TTFTs      []float64   `json:"ttfts"`     // seconds
	ITLs       [][]float64 `json:"itls"`      // seconds
	Latencies  []float64   `json:"latencies"` // E2EL, seconds
	Errors     []string    `json:"errors"`    // "" for a success

	// The run's shape, for the report.
	NumPrompts     int     `json:"num_prompts"`
	MaxConcurrency int     `json:"max_concurrency"` // 0: no limit
	RequestRate    float64 `json:"-"`               // +Inf: all at once (JSON has no Inf)
	Burstiness     float64 `json:"burstiness"`
}

// Stats summarises one latency over the completed requests, in milliseconds; all zero
// when there is no value (as vLLM reports).
type Stats struct {
	Mean, Median, Std float64
	Percentiles       []Percentile
}

// Percentile is one percentile's value.
type Percentile struct {
	P     float64 // 0..100
	Value float64
}

// summarize returns the Stats of vals (seconds) in milliseconds.
func summarize(vals []float64, ps []float64) Stats {
	if len(vals) == 0 {
		vals = []float64{0}
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	var sum float64
	for _, v := range s {
		sum += v
	}
	mean := sum / float64(len(s))
	var sq float64
	for _, v := range s {
		sq += (v - mean) * (v - mean)
	}
	st := Stats{Mean: 1000 * mean, Median: 1000 * percentile(s, 50), Std: 1000 * math.Sqrt(sq/float64(len(s)))}
	for _, p := range ps {
		st.Percentiles = append(st.Percentiles, Percentile{P: p, Value: 1000 * percentile(s, p)})
	}
	return st
}

// percentile is numpy's default (linear) percentile of sorted values.
func percentile(sorted []float64, p float64) float64 {
	pos := p / 100 * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	frac := pos - float64(lo)
	return sorted[lo] + frac*(sorted[lo+1]-sorted[lo])
}

// pWord names a percentile as vLLM does: "99", or "99.9" when not whole.
func pWord(p float64) string {
	if p == math.Trunc(p) {
		return strconv.Itoa(int(p))
	}
	return strconv.FormatFloat(p, 'f', -1, 64)
}

// MarshalJSON writes the result with vLLM's flattened latency keys.
func (r *Result) MarshalJSON() ([]byte, error) {
	type plain Result // without this method
	b, err := json.Marshal((*plain)(r))
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for name, st := range map[string]Stats{"ttft": r.TTFT, "tpot": r.TPOT, "itl": r.ITL, "e2el": r.E2EL} {
		m["mean_"+name+"_ms"], m["median_"+name+"_ms"], m["std_"+name+"_ms"] = st.Mean, st.Median, st.Std
		for _, p := range st.Percentiles {
			m["p"+pWord(p.P)+"_"+name+"_ms"] = p.Value
		}
	}
	if !math.IsInf(r.RequestRate, 0) {
		m["request_rate"] = r.RequestRate
	} else {
		m["request_rate"] = "inf"
	}
	return json.Marshal(m)
}

// result computes the Result of outs over a run of dur.
func result(cfg Config, outs []output, dur time.Duration) *Result {
	r := &Result{Duration: dur.Seconds(), NumPrompts: len(outs), MaxConcurrency: cfg.Concurrency,
		RequestRate: cfg.RequestRate, Burstiness: cfg.Burstiness}
	var ttfts, tpots, itls, e2els []float64
	good := 0
	for _, o := range outs {
		r.InputLens = append(r.InputLens, o.promptLen)
		r.Errors = append(r.Errors, o.err)
		if !o.success {
			r.Failed++
			r.OutputLens, r.TTFTs, r.ITLs, r.Latencies = append(r.OutputLens, 0), append(r.TTFTs, 0), append(r.ITLs, nil), append(r.Latencies, 0)
			continue
		}
		r.Completed++
		r.TotalInputTokens += o.promptLen
		r.TotalOutputTokens += o.outputTokens
		r.OutputLens = append(r.OutputLens, o.outputTokens)
		tpot := 0.0 // vLLM's goodput takes a one-token answer's TPOT as 0
		if o.outputTokens > 1 {
			tpot = (o.latency - o.ttft).Seconds() / float64(o.outputTokens-1)
			tpots = append(tpots, tpot)
		}
		var itl []float64
		for _, d := range o.itl {
			itl = append(itl, d.Seconds())
		}
		ttfts, itls, e2els = append(ttfts, o.ttft.Seconds()), append(itls, itl...), append(e2els, o.latency.Seconds())
		r.TTFTs, r.ITLs, r.Latencies = append(r.TTFTs, o.ttft.Seconds()), append(r.ITLs, itl), append(r.Latencies, o.latency.Seconds())
		if meets(cfg.Goodput, o.ttft, o.latency, tpot) {
			good++
		}
	}
	secs := max(dur.Seconds(), 1e-9)
	r.RequestThroughput = float64(r.Completed) / secs
	r.OutputThroughput = float64(r.TotalOutputTokens) / secs
	r.TotalTokenThroughput = float64(r.TotalInputTokens+r.TotalOutputTokens) / secs
	if len(cfg.Goodput) > 0 {
		g := float64(good) / secs
		r.RequestGoodput = &g
	}
	r.TTFT, r.TPOT = summarize(ttfts, cfg.Percentiles), summarize(tpots, cfg.Percentiles)
	r.ITL, r.E2EL = summarize(itls, cfg.Percentiles), summarize(e2els, cfg.Percentiles)
	return r
}

// meets reports whether a request is within every SLO in slo.
func meets(slo map[string]time.Duration, ttft, e2el time.Duration, tpot float64) bool {
	if len(slo) == 0 {
		return false
	}
	for k, limit := range slo {
		var v float64
		switch k {
		case "ttft":
			v = ttft.Seconds()
		case "tpot":
			v = tpot
		case "e2el":
			v = e2el.Seconds()
		}
		if v > limit.Seconds() {
			return false
		}
	}
	return true
}
