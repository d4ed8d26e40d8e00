// Package engine is Ferry's native LLM engine: a decoder-only model in the Optimum
// ONNX layout (input_ids, attention_mask, position_ids, past_key_values.N.key/value in;
// logits, present.N.key/value out) run on ONNX Runtime with continuous batching.
//
// One goroutine, Run, owns the batch, the KV arena and the session. Each step it
// schedules the running sequences' decode tokens first, then prompt chunks within
// the token budget (vLLM V1's chunked prefill), gathers each row's KV from its blocks
// (internal/llm/kv) into one left-padded batch, runs the model, scatters the new KV
// columns back and samples one token per finished row. When the KV pool runs out it
// preempts the newest sequence, freeing its blocks to recompute it later. With
// prefix caching on, a prompt whose leading full blocks are cached starts after them.
//
// Generate is called per request on the caller's goroutine; tokens reach it through a
// per-sequence outbox, so a slow client never stalls the step loop. Metrics carry
// vLLM's names (vllm:time_to_first_token_seconds, ...), so dashboards built for vLLM
// read them as they are.
package engine
