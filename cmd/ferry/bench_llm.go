package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryml/ferry/internal/llmbench"
)

// benchLLMCommand is `ferry bench llm`: vLLM's `bench serve` against an
// OpenAI-compatible server (Ferry's /v1, the gateway, or vLLM itself), with vLLM's
// definitions of TTFT, TPOT, ITL, end-to-end latency, throughput and goodput.
func benchLLMCommand(getenv func(string) string, stdout io.Writer) *cobra.Command {
	var (
		cfg         llmbench.Config
		rate        string
		goodput     string
		percentiles string
		resultFile  string
	)
	cmd := &cobra.Command{
		Use:   "llm --model MODEL [flags]",
		Short: "Benchmark an OpenAI-compatible LLM server with vLLM's bench serve definitions",
		Long: `bench llm sends --num-prompts streaming requests of random prompts (--random-input-len
tokens after a shared --random-prefix-len prefix, greedy, ignore_eos, --random-output-len tokens
each) at --request-rate (Poisson, or Gamma gaps with --burstiness) with at most
--max-concurrency in flight, and reports as vLLM's bench serve does: request and token
throughput, TTFT, TPOT, ITL and end-to-end latency (mean, median, std, percentiles), and
goodput against --goodput SLOs. --result-filename writes the JSON vLLM writes.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.RequestRate, err = parseRate(rate); err != nil {
				return err
			}
			if cfg.Goodput, err = parseGoodput(goodput); err != nil {
				return err
			}
			if cfg.Percentiles, err = parsePercentiles(percentiles); err != nil {
				return err
			}
			if cfg.APIKey == "" {
				cfg.APIKey = getenv("OPENAI_API_KEY")
			}
			res, err := llmbench.Run(cmd.Context(), cfg)
			if res != nil {
				res.WriteText(stdout)
			}
			if err != nil {
				return err
			}
			if resultFile != "" {
				b, err := json.MarshalIndent(res, "", "  ")
				if err != nil {
					return err
				}
				return os.WriteFile(resultFile, append(b, '\n'), 0o644)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfg.BaseURL, "url", "u", "http://localhost:8000", "the server (its /v1 API is under it)")
	f.StringVarP(&cfg.Model, "model", "m", "tinygpt", "the model of each request")
	f.StringVar(&cfg.APIKey, "api-key", "", "sent as Authorization: Bearer (default: $OPENAI_API_KEY)")
	f.StringVar(&cfg.Endpoint, "endpoint", "chat", "chat (/v1/chat/completions) or completions (/v1/completions)")
	f.IntVar(&cfg.NumPrompts, "num-prompts", 100, "requests measured")
	f.IntVar(&cfg.Concurrency, "max-concurrency", 0, "most requests in flight (0: no limit)")
	f.StringVar(&rate, "request-rate", "inf", "requests per second, or inf to send them all at once")
	f.Float64Var(&cfg.Burstiness, "burstiness", 1, "Gamma shape of the gaps between requests: 1 is Poisson, lower is burstier")
	f.IntVar(&cfg.InputLen, "random-input-len", 128, "prompt tokens after the shared prefix")
	f.IntVar(&cfg.OutputLen, "random-output-len", 128, "tokens generated per request (max_tokens with ignore_eos)")
	f.IntVar(&cfg.PrefixLen, "random-prefix-len", 0, "tokens of one prefix every prompt shares (prefix caching)")
	f.Int64Var(&cfg.Seed, "seed", 0, "seed of the random prompts and arrivals")
	f.StringVar(&goodput, "goodput", "", `SLOs in ms, e.g. "ttft:1000 tpot:100 e2el:20000": goodput counts the requests meeting them all`)
	f.StringVar(&percentiles, "metric-percentiles", "50,90,99", "percentiles reported for each latency")
	f.BoolVar(&cfg.Warmup, "warmup", true, "send one uncounted request first")
	f.DurationVar(&cfg.Timeout, "timeout", 10*time.Minute, "per request, stream included")
	f.StringVar(&resultFile, "result-filename", "", "write the results as JSON (vLLM's keys) to this file")
	return cmd
}

func parseRate(s string) (float64, error) {
	if s == "" || s == "inf" {
		return math.Inf(1), nil
	}
	r, err := strconv.ParseFloat(s, 64)
	if err != nil || r <= 0 {
		return 0, fmt.Errorf("--request-rate %q: want a positive number or inf", s)
	}
	return r, nil
}

// parseGoodput reads vLLM's --goodput form: "metric:ms" pairs separated by spaces or commas.
func parseGoodput(s string) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	for _, kv := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' }) {
		k, v, ok := strings.Cut(kv, ":")
		ms, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil || ms <= 0 {
			return nil, fmt.Errorf("--goodput %q: want metric:milliseconds pairs, e.g. ttft:1000 tpot:100", kv)
		}
		out[k] = time.Duration(ms * float64(time.Millisecond))
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func parsePercentiles(s string) ([]float64, error) {
	var out []float64
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || v <= 0 || v > 100 {
			return nil, fmt.Errorf("--metric-percentiles %q: want numbers in (0, 100]", p)
		}
		out = append(out, v)
	}
	return out, nil
}
