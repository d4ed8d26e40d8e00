// Package gatewaytest is a fake OpenAI-compatible upstream for tests and benchmarks
// of the LLM gateway: an httptest server on 127.0.0.1 answering /v1/chat/completions,
// /v1/completions, /v1/embeddings, /v1/models and a vLLM-style /metrics, whose every
// answer is scripted (status and Retry-After, delays, chunks, missing usage, a
// dropped connection) and whose requests are recorded. Only tests import it.
package gatewaytest
