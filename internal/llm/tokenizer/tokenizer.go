package tokenizer

import (
	"fmt"
	"sync"

	tiktoken "github.com/pkoukk/tiktoken-go"
	loader "github.com/pkoukk/tiktoken-go-loader"
)

// Tokenizer encodes text to token ids and decodes them back. Implementations are
// safe for concurrent use.
type Tokenizer interface {
	// Encode returns the ids of text. Text that spells a special token
	// ("<|endoftext|>") is encoded as ordinary text: a prompt never injects one.
	Encode(text string) []int
	// EncodeSpecial is Encode, except that the special tokens named in text (a chat
	// template's markers) become their ids.
	EncodeSpecial(text string) []int
	// Decode returns the text of ids. Bytes that do not form whole UTF-8
	// characters are kept as they are (a StreamDecoder joins them).
	Decode(ids []int) string
	// TokenBytes is the raw bytes one id stands for; nil for an id out of range.
	TokenBytes(id int) []byte
	// EOS is the end-of-sequence id, -1 when the vocabulary has none.
	EOS() int
	// Special returns the id of a special token by its text, and whether it exists.
	Special(text string) (int, bool)
	// VocabSize is one more than the largest id.
	VocabSize() int
	// Name is the encoding's name (r50k_base, ...) or the file it came from.
	Name() string
}

// Encodings lists the tiktoken encodings Load knows; "gpt2" is r50k_base.
var Encodings = []string{"r50k_base", "p50k_base", "cl100k_base", "o200k_base"}

// The tiktoken binding reads its ranks through a package-level loader; set the
// offline one once, before the first encoding is built.
var setLoader sync.Once

var (
	cacheMu sync.Mutex
	cache   = map[string]*tiktokenTokenizer{} // guarded by cacheMu; encodings are immutable and shared
)

// Load returns the named tiktoken encoding ("gpt2" is r50k_base). Loading builds rank
// tables once per process (about 100 ms for cl100k); later calls share them.
func Load(name string) (Tokenizer, error) {
	if name == "gpt2" {
		name = "r50k_base"
	}
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if t, ok := cache[name]; ok {
		return t, nil
	}
	known := false
	for _, e := range Encodings {
		known = known || e == name
	}
	if !known {
		return nil, fmt.Errorf("tokenizer: unknown encoding %q (known: %v, or a tokenizer.json file)", name, Encodings)
	}
	setLoader.Do(func() { tiktoken.SetBpeLoader(loader.NewOfflineLoader()) })
	enc, err := tiktoken.GetEncoding(name)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", name, err)
	}
	t := newTiktoken(name, enc)
	cache[name] = t
	return t, nil
}

type tiktokenTokenizer struct {
	name    string
	enc     *tiktoken.Tiktoken
	special map[string]int
	eos     int
	vocab   int
}

// endOfText is the end-of-sequence marker of every tiktoken encoding.
const endOfText = "<|endoftext|>"

func newTiktoken(name string, enc *tiktoken.Tiktoken) *tiktokenTokenizer {
	t := &tiktokenTokenizer{name: name, enc: enc, special: map[string]int{}, eos: -1}
	for text := range specialNames(name) {
		if ids := enc.Encode(text, []string{text}, nil); len(ids) == 1 {
			t.special[text] = ids[0]
			t.vocab = max(t.vocab, ids[0]+1)
		}
	}
	if id, ok := t.special[endOfText]; ok {
		t.eos = id
	}
	return t
}

// specialNames are the special tokens of each encoding (tiktoken's tables).
func specialNames(name string) map[string]bool {
	s := map[string]bool{endOfText: true}
	switch name {
	case "p50k_base":
	case "cl100k_base":
		for _, n := range []string{"<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|endofprompt|>"} {
			s[n] = true
		}
	case "o200k_base":
		s["<|endofprompt|>"] = true
	}
	return s
}

func (t *tiktokenTokenizer) Encode(text string) []int { return t.enc.EncodeOrdinary(text) }

func (t *tiktokenTokenizer) EncodeSpecial(text string) []int {
	return t.enc.Encode(text, []string{"all"}, nil)
}

func (t *tiktokenTokenizer) Decode(ids []int) string { return t.enc.Decode(ids) }

func (t *tiktokenTokenizer) TokenBytes(id int) []byte {
	if id < 0 || id >= t.vocab {
		return nil
	}
	return []byte(t.enc.Decode([]int{id}))
}

func (t *tiktokenTokenizer) EOS() int { return t.eos }

func (t *tiktokenTokenizer) Special(text string) (int, bool) {
	id, ok := t.special[text]
	return id, ok
}

func (t *tiktokenTokenizer) VocabSize() int { return t.vocab }

func (t *tiktokenTokenizer) Name() string { return t.name }
