// Package gateway is the LLM lane's Generative AI gateway: an llm.Backend in front of
// other llm.Backends (the native engine) and of HTTP upstreams that speak the OpenAI
// wire (vLLM, llama.cpp's llama-server, Ollama, OpenAI itself).
//
// A request is authenticated by its API key, checked against the key's and its team's
// model allow-list and limits (requests and tokens per minute, parallel requests), then
// routed: a model alias maps to weighted targets (or the least busy one, judged by the
// upstreams' own /metrics), with retries and ordered fallbacks on 429, 5xx, timeouts
// and dropped connections until the first Delta reaches the caller, a cooldown for a
// target that keeps failing, a context-window fallback, and shadow targets that get a
// copy whose answer is discarded.
//
// Money is kept in one spend ledger (ledger.go), keyed by the canonical (upstream,
// model) id and shared by the check and the charge: before a call the worst-case cost
// is reserved atomically against the key's and the team's budgets, and after it the
// reservation is settled to the actual cost. No request is admitted past an exhausted
// budget, whatever the concurrency. The ledger lives in memory: it is exact for one
// gateway process and is not shared between replicas.
package gateway
