// Package tokenizer turns text into a model's token ids and back, offline: the
// tiktoken encodings (GPT-2's r50k_base, p50k_base, cl100k_base, o200k_base) come from
// ranks embedded in the binary (tiktoken-go-loader), and a Hugging Face tokenizer.json
// with a byte-level BPE model (GPT-2, Llama 3, Qwen 2 shapes) is read from the model's
// folder by LoadFile; other tokenizer.json models (WordPiece, Unigram, SentencePiece
// BPE) are refused by name. Decoding a stream token by token goes through a
// StreamDecoder, which holds back bytes until they form whole UTF-8 characters.
package tokenizer
