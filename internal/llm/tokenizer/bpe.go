package tokenizer

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// gpt2Pattern is the pre-tokenizer regex of GPT-2, which a ByteLevel pre-tokenizer
// with use_regex applies.
const gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

// bpeTokenizer is a byte-level BPE read from a tokenizer.json. It is immutable after
// parseHF, so safe for concurrent use.
type bpeTokenizer struct {
	name         string
	vocab        map[string]int   // byte-level spelling → id
	merges       map[uint64]merge // (left id << 32 | right id) → the merge
	byteID       [256]int         // the id of each single byte, -1 when the vocabulary lacks it
	tokens       [][]byte         // id → the bytes it stands for (nil: no such id)
	special      map[string]int   // every added token by its text
	allAdded     addedSet         // what EncodeSpecial splits out
	plainAdded   addedSet         // what Encode splits out: added tokens not marked special
	normalize    func(string) string
	splits       []split
	prefixSpace  bool
	ignoreMerges bool // a piece that is a whole vocabulary entry is not merged (Llama 3)
	unk, eos     int
}

var _ Tokenizer = (*bpeTokenizer)(nil)

type merge struct{ rank, id int }

// byteRune is GPT-2's bytes_to_unicode: printable bytes stand for themselves, the
// rest for code points from 256 up, so every byte has a visible character.
var byteRune, runeByte = byteLevelTables()

func byteLevelTables() ([256]rune, map[rune]byte) {
	var br [256]rune
	rb := make(map[rune]byte, 256)
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			br[b] = rune(b)
		} else {
			br[b] = rune(256 + n)
			n++
		}
		rb[br[b]] = byte(b)
	}
	return br, rb
}

// byteLevel spells s in byte-level characters, as the vocabulary does.
func byteLevel(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteRune(byteRune[s[i]])
	}
	return b.String()
}

// unByteLevel returns the bytes a byte-level spelling stands for; a character
// outside the byte-level alphabet stands for its own UTF-8.
func unByteLevel(s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if b, ok := runeByte[r]; ok {
			out = append(out, b)
		} else {
			out = utf8.AppendRune(out, r)
		}
	}
	return out
}

func (t *bpeTokenizer) buildVocab(f *hfFile) error {
	maxID := -1
	for tok, id := range f.Model.Vocab {
		if id < 0 {
			return fmt.Errorf("model.vocab %q: negative id %d", tok, id)
		}
		maxID = max(maxID, id)
	}
	for _, a := range f.AddedTokens {
		if a.ID < 0 {
			return fmt.Errorf("added_tokens %q: negative id %d", a.Content, a.ID)
		}
		maxID = max(maxID, a.ID)
	}
	if n := len(f.Model.Vocab) + len(f.AddedTokens); maxID >= n+maxIDSlack {
		return fmt.Errorf("id %d is far past the %d tokens the file has", maxID, n)
	}
	t.vocab = f.Model.Vocab
	t.tokens = make([][]byte, maxID+1)
	for tok, id := range t.vocab {
		t.tokens[id] = unByteLevel(tok)
	}
	for b := range t.byteID {
		t.byteID[b] = -1
		if id, ok := t.vocab[string(byteRune[b])]; ok {
			t.byteID[b] = id
		}
	}
	if u := f.Model.UnkToken; u != nil {
		if id, ok := t.vocab[*u]; ok {
			t.unk = id
		}
	}
	t.special = map[string]int{}
	var all, plain []addedToken
	for _, a := range f.AddedTokens {
		if a.Content == "" {
			continue
		}
		t.tokens[a.ID] = []byte(a.Content)
		t.special[a.Content] = a.ID
		all = append(all, addedToken{a.Content, a.ID})
		if !a.Special {
			plain = append(plain, addedToken{a.Content, a.ID})
		}
	}
	t.allAdded, t.plainAdded = newAddedSet(all), newAddedSet(plain)
	return nil
}

func (t *bpeTokenizer) buildMerges(pairs [][2]string) error {
	t.merges = make(map[uint64]merge, len(pairs))
	for rank, p := range pairs {
		a, okA := t.vocab[p[0]]
		b, okB := t.vocab[p[1]]
		ab, okAB := t.vocab[p[0]+p[1]]
		if !okA || !okB || !okAB {
			return fmt.Errorf("model.merges[%d] %q %q: a token or their join is not in model.vocab", rank, p[0], p[1])
		}
		key := uint64(a)<<32 | uint64(b)
		if _, dup := t.merges[key]; !dup {
			t.merges[key] = merge{rank: rank, id: ab}
		}
	}
	return nil
}

// addedToken is a token matched by its text before BPE runs.
type addedToken struct {
	text string
	id   int
}

// addedSet finds added tokens in text: candidates by first byte, longest first, so
// "<|im_start|>" wins over a shorter token that is its prefix.
type addedSet map[byte][]addedToken

func newAddedSet(toks []addedToken) addedSet {
	s := addedSet{}
	for _, a := range toks {
		s[a.text[0]] = append(s[a.text[0]], a)
	}
	for _, l := range s {
		slices.SortStableFunc(l, func(x, y addedToken) int { return len(y.text) - len(x.text) })
	}
	return s
}

func (s addedSet) match(text string) (addedToken, bool) {
	for _, a := range s[text[0]] {
		if strings.HasPrefix(text, a.text) {
			return a, true
		}
	}
	return addedToken{}, false
}

// split is one regex pre-tokenization step.
type split struct {
	re      *regexp2.Regexp
	removed bool // the matches are dropped (behavior Removed); else each is a piece (Isolated)
}

func newSplit(pattern, behavior string, invert bool) (split, error) {
	if invert {
		return split{}, fmt.Errorf("Split with invert is not supported")
	}
	if behavior != "Isolated" && behavior != "Removed" {
		return split{}, fmt.Errorf("Split behavior %q is not supported (Isolated, Removed)", behavior)
	}
	re, err := regexp2.Compile(pattern, regexp2.None)
	if err != nil {
		return split{}, fmt.Errorf("Split pattern %q: %w", pattern, err)
	}
	return split{re: re, removed: behavior == "Removed"}, nil
}

func quoteRegex(s string) string { return regexp2.Escape(s) }

// apply appends to out the pieces of piece: each match, and the text between.
func (s split) apply(piece string, out []string) []string {
	runes := []rune(piece)
	last := 0
	m, _ := s.re.FindRunesMatch(runes)
	for m != nil {
		if m.Index > last {
			out = append(out, string(runes[last:m.Index]))
		}
		if !s.removed && m.Length > 0 {
			out = append(out, string(runes[m.Index:m.Index+m.Length]))
		}
		last = m.Index + m.Length
		m, _ = s.re.FindNextMatch(m)
	}
	if last < len(runes) {
		out = append(out, string(runes[last:]))
	}
	return out
}
