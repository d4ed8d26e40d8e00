// Package llmbench is a load generator for OpenAI-compatible LLM servers that measures
// what vLLM's `vllm bench serve` measures, with its definitions, so Ferry's numbers can
// be set beside published vLLM results.
//
// It is a client only: Run sends NumPrompts streaming chat or completion requests
// (temperature 0, max_tokens = OutputLen, ignore_eos, stream_options.include_usage)
// built from random r50k words, at a request rate whose gaps follow a Gamma
// distribution (burstiness 1 is a Poisson process), with at most Concurrency in
// flight. From each stream it takes:
//
//   - TTFT: the first chunk with non-empty content, less the send time;
//   - ITL: the gaps between successive content chunks;
//   - E2EL: the last content chunk, less the send time;
//   - output tokens: usage.completion_tokens, or the r50k count of the text when the
//     server sends no usage;
//   - TPOT: (E2EL − TTFT) / (output tokens − 1), for requests of more than one token.
//
// The Result aggregates them over the run's wall time (request, output and total token
// throughput; mean, median, standard deviation and percentiles of each latency; goodput,
// the rate of requests within every SLO given) and marshals to JSON with vLLM's result
// keys. A failed request is counted, not fatal.
package llmbench
