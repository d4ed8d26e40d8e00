package llmbench

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/ferryml/ferry/internal/llm/tokenizer"
)

// prompt is one request's text and its length in r50k tokens.
type prompt struct {
	text string
	len  int
}

// words draws r50k tokens that are a space and 2 or more lowercase ASCII letters and
// that encode back to exactly themselves: joined, n of them are n tokens, since the
// GPT-2 pre-tokenizer splits text at each such space-led word.
type words struct {
	tok   tokenizer.Tokenizer
	cands []string        // space-led lowercase tokens
	ok    map[string]bool // candidates checked so far: whether they encode to one token
}

func newWords(tok tokenizer.Tokenizer) *words {
	w := &words{tok: tok, ok: map[string]bool{}}
	for id := range tok.VocabSize() {
		b := tok.TokenBytes(id)
		if len(b) < 3 || b[0] != ' ' {
			continue
		}
		lower := true
		for _, c := range b[1:] {
			lower = lower && c >= 'a' && c <= 'z'
		}
		if lower {
			w.cands = append(w.cands, string(b))
		}
	}
	return w
}

// pick appends n random words to sb. Candidates are checked when first drawn, which
// costs a run of a few prompts far less than checking the whole vocabulary.
func (w *words) pick(rng *rand.Rand, sb *strings.Builder, n int) {
	for n > 0 {
		c := w.cands[rng.IntN(len(w.cands))]
		good, seen := w.ok[c]
		if !seen {
			good = len(w.tok.Encode(c)) == 1
			w.ok[c] = good
		}
		if good {
			sb.WriteString(c)
			n--
		}
	}
}

// prompts returns cfg.NumPrompts random prompts of cfg.PrefixLen shared words followed
// by cfg.InputLen words of their own, each with its measured token count. The same
// seed gives the same prompts.
func prompts(cfg Config, tok tokenizer.Tokenizer) ([]prompt, error) {
	ws := newWords(tok)
	if len(ws.cands) < 100 {
		return nil, fmt.Errorf("llmbench: tokenizer %s has too few plain words to build prompts from", tok.Name())
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x9e3779b97f4a7c15))
	var prefix strings.Builder
	ws.pick(rng, &prefix, cfg.PrefixLen)
	ps := make([]prompt, cfg.NumPrompts)
	for i := range ps {
		var sb strings.Builder
		sb.WriteString(prefix.String())
		ws.pick(rng, &sb, cfg.InputLen)
		// The leading space stays: without it the first word could be two tokens.
		text := sb.String()
		ps[i] = prompt{text: text, len: len(tok.Encode(text))}
	}
	return ps, nil
}
