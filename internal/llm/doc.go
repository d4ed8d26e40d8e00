// Package llm is the LLM lane's one internal request type and the seam between its
// parts. The OpenAI-compatible edge (transport/openai) decodes chat and completion
// requests into a Request and calls a Backend; a Backend is either the native engine
// behind a tokenizer and chat template (llm/native) or the gateway (llm/gateway), which
// routes a Request to upstream LLM servers and to native models alike, with keys,
// limits and budgets. Answers come back as Deltas, one per generated piece of text, so
// streaming and non-streaming callers share one path; Usage closes the exchange.
//
// Errors that a client must see with a status (a prompt past the context window, an
// unknown model, an exhausted budget) are *Error, in OpenAI's error vocabulary.
package llm
