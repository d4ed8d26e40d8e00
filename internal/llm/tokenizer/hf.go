package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// hfFile is the part of a Hugging Face tokenizer.json that a byte-level BPE needs.
type hfFile struct {
	AddedTokens []struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer   *hfComponent `json:"normalizer"`
	PreTokenizer *hfComponent `json:"pre_tokenizer"`
	Decoder      *hfComponent `json:"decoder"`
	Model        struct {
		Type         string          `json:"type"`
		Vocab        map[string]int  `json:"vocab"`
		Merges       json.RawMessage `json:"merges"`
		IgnoreMerges bool            `json:"ignore_merges"`
		UnkToken     *string         `json:"unk_token"`
	} `json:"model"`
}

// hfComponent is a normalizer, pre-tokenizer or decoder: each has a "type" and
// type-specific fields, and Sequence nests them.
type hfComponent struct {
	Type           string         `json:"type"`
	AddPrefixSpace bool           `json:"add_prefix_space"`
	UseRegex       *bool          `json:"use_regex"` // ByteLevel; absent means true
	Pattern        *hfPattern     `json:"pattern"`   // Split
	Behavior       string         `json:"behavior"`  // Split
	Invert         bool           `json:"invert"`    // Split
	PreTokenizers  []*hfComponent `json:"pretokenizers"`
	Normalizers    []*hfComponent `json:"normalizers"`
	Decoders       []*hfComponent `json:"decoders"`
}

type hfPattern struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

// maxIDSlack bounds how sparse ids may be: the tables are indexed by id, so a file
// naming id 1e12 must be refused rather than allocated.
const maxIDSlack = 1 << 16

// LoadFile reads a Hugging Face tokenizer.json whose model is a byte-level BPE (GPT-2,
// Llama 3, Qwen 2 and the like: model.type "BPE", a ByteLevel pre-tokenizer,
// optionally after Split regexes, and a ByteLevel decoder). added_tokens become
// special tokens. The end-of-sequence id is tokenizer_config.json's eos_token when
// that file sits beside path, else the first of the usual names the vocabulary has
// ("<|endoftext|>", "<|end_of_text|>", "</s>", ...). A post-processor (a BOS the model
// wants) is not applied: a chat template writes it. Other models (WordPiece, Unigram,
// SentencePiece-style BPE with a Metaspace pre-tokenizer) are refused, naming what
// the file has.
func LoadFile(path string) (Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	cfg, err := os.ReadFile(filepath.Join(filepath.Dir(path), "tokenizer_config.json"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := parseHF(path, data, cfg)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return t, nil
}

// parseHF builds a tokenizer from a tokenizer.json's bytes and, when not nil, its
// tokenizer_config.json's.
func parseHF(name string, data, config []byte) (*bpeTokenizer, error) {
	var f hfFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("not a tokenizer.json: %w", err)
	}
	if f.Model.Type != "BPE" && !(f.Model.Type == "" && f.Model.Merges != nil) {
		return nil, fmt.Errorf("model.type %q is not supported (byte-level BPE only)", f.Model.Type)
	}
	if len(f.Model.Vocab) == 0 {
		return nil, errors.New("model.vocab is empty")
	}
	t := &bpeTokenizer{name: name, eos: -1, ignoreMerges: f.Model.IgnoreMerges, unk: -1}
	var err error
	if t.normalize, err = normalizer(f.Normalizer); err != nil {
		return nil, err
	}
	if t.splits, t.prefixSpace, err = preTokenizer(f.PreTokenizer); err != nil {
		return nil, err
	}
	if err := checkDecoder(f.Decoder); err != nil {
		return nil, err
	}
	if err := t.buildVocab(&f); err != nil {
		return nil, err
	}
	pairs, err := parseMerges(f.Model.Merges)
	if err != nil {
		return nil, err
	}
	if err := t.buildMerges(pairs); err != nil {
		return nil, err
	}
	t.eos = findEOS(t, config)
	return t, nil
}

// normalizer returns the text normalization the file asks for: none and NFC are
// what byte-level BPE files use.
func normalizer(c *hfComponent) (func(string) string, error) {
	if c == nil {
		return nil, nil
	}
	switch c.Type {
	case "NFC":
		return norm.NFC.String, nil
	case "Sequence":
		if len(c.Normalizers) == 0 {
			return nil, nil
		}
		if len(c.Normalizers) == 1 {
			return normalizer(c.Normalizers[0])
		}
	}
	return nil, fmt.Errorf("normalizer %q is not supported (none or NFC)", c.Type)
}

// preTokenizer returns the regex splits a byte-level pre-tokenizer applies, in
// order, and whether it adds a leading space. A ByteLevel step must be present.
func preTokenizer(c *hfComponent) ([]split, bool, error) {
	if c == nil {
		return nil, false, errors.New("pre_tokenizer is null: only byte-level BPE (a ByteLevel pre-tokenizer) is supported")
	}
	steps := []*hfComponent{c}
	if c.Type == "Sequence" {
		steps = c.PreTokenizers
	}
	var splits []split
	byteLevel, prefix := false, false
	for i, s := range steps {
		if s == nil {
			return nil, false, fmt.Errorf("pre_tokenizer %d is null", i)
		}
		switch s.Type {
		case "ByteLevel":
			byteLevel, prefix = true, s.AddPrefixSpace
			if s.UseRegex == nil || *s.UseRegex {
				sp, err := newSplit(gpt2Pattern, "Isolated", false)
				if err != nil {
					return nil, false, err
				}
				splits = append(splits, sp)
			}
		case "Split":
			sp, err := splitOf(s)
			if err != nil {
				return nil, false, fmt.Errorf("pre_tokenizer %d: %w", i, err)
			}
			splits = append(splits, sp)
		default:
			return nil, false, fmt.Errorf("pre_tokenizer %q is not supported (ByteLevel, Split, Sequence)", s.Type)
		}
	}
	if !byteLevel {
		return nil, false, errors.New("pre_tokenizer has no ByteLevel step: only byte-level BPE is supported")
	}
	return splits, prefix, nil
}

func splitOf(s *hfComponent) (split, error) {
	if s.Pattern == nil {
		return split{}, errors.New("Split has no pattern")
	}
	switch {
	case s.Pattern.Regex != nil:
		return newSplit(*s.Pattern.Regex, s.Behavior, s.Invert)
	case s.Pattern.String != nil:
		return newSplit(quoteRegex(*s.Pattern.String), s.Behavior, s.Invert)
	}
	return split{}, errors.New("Split pattern has neither String nor Regex")
}

// checkDecoder refuses a decoder that is not byte-level: decoding here always maps
// byte-level characters back to bytes.
func checkDecoder(c *hfComponent) error {
	if c == nil || c.Type == "ByteLevel" {
		return nil
	}
	if c.Type == "Sequence" {
		for _, d := range c.Decoders {
			if d != nil && d.Type == "ByteLevel" {
				return nil
			}
		}
	}
	return fmt.Errorf("decoder %q is not supported (ByteLevel)", c.Type)
}

// parseMerges reads model.merges in either form: "a b" strings or ["a", "b"] pairs.
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var lines []string
	if err := json.Unmarshal(raw, &lines); err == nil {
		pairs := make([][2]string, len(lines))
		for i, l := range lines {
			a, b, ok := strings.Cut(l, " ")
			if !ok || a == "" || b == "" || strings.Contains(b, " ") {
				return nil, fmt.Errorf("model.merges[%d] %q: want two tokens separated by one space", i, l)
			}
			pairs[i] = [2]string{a, b}
		}
		return pairs, nil
	}
	var lists [][]string
	if err := json.Unmarshal(raw, &lists); err != nil {
		return nil, errors.New(`model.merges: want ["a b", ...] or [["a", "b"], ...]`)
	}
	pairs := make([][2]string, len(lists))
	for i, l := range lists {
		if len(l) != 2 {
			return nil, fmt.Errorf("model.merges[%d]: want a pair, got %d strings", i, len(l))
		}
		pairs[i] = [2]string{l[0], l[1]}
	}
	return pairs, nil
}

// eosNames are the end-of-sequence tokens of common byte-level BPE models, in the
// order they are tried when tokenizer_config.json does not say.
var eosNames = []string{"<|endoftext|>", "<|end_of_text|>", "</s>", "<|im_end|>", "<|eot_id|>", "<eos>"}

func findEOS(t *bpeTokenizer, config []byte) int {
	var cfg struct {
		EOS json.RawMessage `json:"eos_token"`
	}
	if json.Unmarshal(config, &cfg) == nil && cfg.EOS != nil {
		var name string
		var obj struct {
			Content string `json:"content"`
		}
		if json.Unmarshal(cfg.EOS, &name) != nil && json.Unmarshal(cfg.EOS, &obj) == nil {
			name = obj.Content
		}
		if id, ok := t.Special(name); ok {
			return id
		}
	}
	for _, n := range eosNames {
		if id, ok := t.Special(n); ok {
			return id
		}
	}
	return -1
}
