// Package sample picks each next token from a model's logits under a request's
// sampling parameters (llm.Sampling): logit bias, minimum tokens, repetition, presence
// and frequency penalties, temperature, top-k, top-p, min-p, and a seeded source so a
// request with a seed draws the same tokens every time, alone or in any batch.
package sample
