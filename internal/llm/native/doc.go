// Package native serves the repository's generative models (config backend "llm") as an
// llm.Backend: a model's tokenizer and chat template turn a Request into token ids, the
// engine (llm/engine: KV cache, continuous batching on ONNX Runtime) generates, and the
// answer is decoded back to text token by token, with stop strings cut where they match.
// Discover finds the models in a Triton-style repository; each folder's config.pbtxt says
// which tokenizer, template and cache sizes to use (see Spec).
package native
