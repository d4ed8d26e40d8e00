package llmbench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/llm/tokenizer"
)

// Run benchmarks the server cfg names and returns the measurements. A request that
// fails is counted in Result.Failed with its error in Result.Errors; Run itself fails
// only for a bad Config, a failed warm-up request, or ctx ending (then with the
// partial Result of the requests sent so far, and ctx's error).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	tok, err := tokenizer.Load("r50k_base")
	if err != nil {
		return nil, fmt.Errorf("llmbench: %w", err)
	}
	ps, err := prompts(cfg, tok)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		MaxIdleConnsPerHost: max(cfg.Concurrency, len(ps), 1), // every stream keeps its connection
		IdleConnTimeout:     90 * time.Second,
	}}
	defer hc.CloseIdleConnections()
	if cfg.Warmup {
		if o := send(ctx, hc, cfg, ps[0].text, ps[0].len); !o.success {
			return nil, fmt.Errorf("llmbench: warm-up request to %s%s failed: %s", cfg.BaseURL, cfg.path(), o.err)
		}
	}
	outs, dur := sendAll(ctx, hc, cfg, ps)
	countTokens(outs, tok)
	return result(cfg, outs, dur), ctx.Err()
}

// sendAll sends each prompt at its arrival time, at most cfg.Concurrency at once, and
// returns the outputs of those it sent (all, unless ctx ended) once every one has
// finished, with the time from the first send.
func sendAll(ctx context.Context, hc *http.Client, cfg Config, ps []prompt) ([]output, time.Duration) {
	delays := arrivals(cfg, len(ps))
	outs := make([]output, len(ps))
	var sem chan struct{}
	if cfg.Concurrency > 0 {
		sem = make(chan struct{}, cfg.Concurrency)
	}
	var wg sync.WaitGroup
	pace := time.NewTimer(time.Hour) // reset to each send time
	defer pace.Stop()
	start := time.Now()
	sent := len(ps)
	for i, p := range ps {
		if d := time.Until(start.Add(delays[i])); d > 0 {
			pace.Reset(d)
			select {
			case <-pace.C:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			sent = i
			break
		}
		wg.Add(1)
		go func() { // ends when its request does (hc's timeout bounds it)
			defer wg.Done()
			if sem != nil {
				select {
				case sem <- struct{}{}:
					defer func() { <-sem }()
				case <-ctx.Done():
					outs[i] = output{promptLen: p.len, err: ctx.Err().Error()}
					return
				}
			}
			outs[i] = send(ctx, hc, cfg, p.text, p.len)
		}()
	}
	wg.Wait()
	return outs[:sent], time.Since(start)
}

// countTokens fills in the output tokens of answers whose server sent no usage.
func countTokens(outs []output, tok tokenizer.Tokenizer) {
	for i := range outs {
		if outs[i].success && outs[i].outputTokens == 0 {
			outs[i].outputTokens = len(tok.Encode(outs[i].text))
		}
	}
}

// arrivals returns each request's send time after the start, as vLLM draws them: gaps
// Gamma(burstiness, 1/(rate·burstiness)), accumulated, then scaled so that the last
// falls at n/rate (which steadies the throughput across seeds). An infinite rate sends
// everything at once.
func arrivals(cfg Config, n int) []time.Duration {
	ds := make([]time.Duration, n)
	if math.IsInf(cfg.RequestRate, 1) {
		return ds
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5851f42d4c957f2d))
	theta := 1 / (cfg.RequestRate * cfg.Burstiness)
	cum := make([]float64, n)
	var t float64
	for i := range cum {
		t += gamma(rng, cfg.Burstiness) * theta
		cum[i] = t
	}
	scale := 1.0
	if t > 0 {
		scale = float64(n) / cfg.RequestRate / t
	}
	for i, c := range cum {
		ds[i] = time.Duration(c * scale * float64(time.Second))
	}
	return ds
}

// gamma draws from Gamma(shape, 1) by Marsaglia and Tsang's method (ACM TOMS 26(3),
// 2000), with the usual boost for shape < 1.
func gamma(rng *rand.Rand, shape float64) float64 {
	if shape < 1 {
		return gamma(rng, shape+1) * math.Pow(1-rng.Float64(), 1/shape) // 1-U is in (0, 1]
	}
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := rng.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}
