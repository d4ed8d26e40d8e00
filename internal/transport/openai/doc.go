// Package openai serves the OpenAI-compatible API (/v1/chat/completions,
// /v1/completions, /v1/embeddings, /v1/models) over an llm.Backend, on the wire as
// OpenAI and vLLM speak it, so the official SDKs and tools built for them work
// unchanged.
//
// Each endpoint has one decoder from its JSON body to llm.Request or llm.EmbedRequest.
// Decoders ignore unknown fields (clients send extras) but are strict about the types
// and ranges of the fields they know, and refuse features this server does not have
// (tools, structured output) rather than ignore them; every refusal is a 400 naming
// the field at fault. vLLM's sampling extras (top_k, min_p, repetition_penalty,
// min_tokens, ignore_eos, stop_token_ids) are read from the body.
//
// Answers come from the backend as llm.Deltas. A non-streamed request gathers them into
// one object; a streamed one sends each as a server-sent event (data: {chunk}), with
// OpenAI's framing: the role on a choice's first chunk, usage: null on every chunk
// and a last chunk with the usage when the client asks (stream_options.include_usage),
// then data: [DONE]. A stream that waits sends comment lines (": keep-alive") so
// proxies keep it open. Nothing is written before the backend's first Delta (or the
// first keep-alive, after Options.KeepAlive of waiting), so an error up to then keeps
// its HTTP status; later, it is one error event that ends the stream. A client that leaves ends the request's context, which fails the backend's
// next emit and so frees what the request held.
//
// Errors are OpenAI's {"error": {"message", "type", "param", "code"}}, from *llm.Error
// (with Retry-After when it says); anything else is a 500 that shows nothing of the
// server's internals (errors.go maps them, nowhere else).
package openai
