package tokenizer

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	loader "github.com/pkoukk/tiktoken-go-loader"
)

// r50kJSON builds GPT-2's tokenizer.json from tiktoken's r50k ranks: byte-level BPE
// ranks are merge ranks, and each token's merge is the pair that BPE with only the
// lower ranks leaves (how Hugging Face converts tiktoken files).
var r50kJSON = sync.OnceValues(func() ([]byte, error) {
	ranks, err := loader.NewOfflineLoader().LoadTiktokenBpe("r50k_base.tiktoken")
	if err != nil {
		return nil, err
	}
	vocab := map[string]int{"<|endoftext|>": 50256}
	type rankedMerge struct {
		rank int
		pair string
	}
	var merges []rankedMerge
	for tok, rank := range ranks {
		vocab[byteLevel(tok)] = rank
		if len(tok) < 2 {
			continue
		}
		parts := bpeRanks(ranks, tok, rank)
		if len(parts) != 2 {
			return nil, fmt.Errorf("token %q (rank %d) is not one merge of lower ranks: %q", tok, rank, parts)
		}
		merges = append(merges, rankedMerge{rank, byteLevel(parts[0]) + " " + byteLevel(parts[1])})
	}
	sort.Slice(merges, func(i, j int) bool { return merges[i].rank < merges[j].rank })
	if len(merges) != 50000 {
		return nil, fmt.Errorf("derived %d merges, GPT-2 has 50000", len(merges))
	}
	lines := make([]string, len(merges))
	for i, m := range merges {
		lines[i] = m.pair
	}
	return json.Marshal(map[string]any{
		"added_tokens":  []any{map[string]any{"id": 50256, "content": "<|endoftext|>", "special": true}},
		"normalizer":    nil,
		"pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
		"decoder":       map[string]any{"type": "ByteLevel"},
		"model":         map[string]any{"type": "BPE", "vocab": vocab, "merges": lines},
	})
})

// bpeRanks runs tiktoken's BPE over tok using only ranks below limit.
func bpeRanks(ranks map[string]int, tok string, limit int) []string {
	parts := make([]string, len(tok))
	for i := 0; i < len(tok); i++ { // bytes, not runes
		parts[i] = tok[i : i+1]
	}
	for {
		best, at := limit, -1
		for i := 0; i+1 < len(parts); i++ {
			if r, ok := ranks[parts[i]+parts[i+1]]; ok && r < best {
				best, at = r, i
			}
		}
		if at < 0 {
			return parts
		}
		parts = slices.Replace(parts, at, at+2, parts[at]+parts[at+1])
	}
}

func loadR50kJSON(t testing.TB) Tokenizer {
	t.Helper()
	data, err := r50kJSON()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := writeBytes(path, data); err != nil {
		t.Fatal(err)
	}
	tk, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

const mixedText = `The quick brown fox jumps over the lazy dog. It's 2026, and we'll see what they've done: ` +
	`prices rose 12.5% (from $1,234 to $1,388)!

func main() {
	for i := 0; i < 10; i++ {
		fmt.Printf("%d\n", i*i) // squares
	}
}

Ünïcödé: naïve café, 日本語のテキスト, 中文字符, emoji 😀🎉👩‍👩‍👧, Ελληνικά, русский текст.    Trailing   spaces  
tabs	and
newlines` + "\n\n\n<|endoftext|> as text."

func TestMatchesTiktokenR50k(t *testing.T) {
	hf := loadR50kJSON(t)
	tt, err := Load("r50k_base")
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range append(strings.Split(mixedText, "\n"), mixedText, " ", "", "   leading", "a\u00a0b") {
		got, want := hf.Encode(text), tt.Encode(text)
		if !slices.Equal(got, want) {
			t.Fatalf("Encode(%q):\n tokenizer.json %v\n tiktoken       %v", text, got, want)
		}
		if back := hf.Decode(got); back != text {
			t.Errorf("Decode(Encode(%q)) = %q", text, back)
		}
	}
	if hf.EOS() != 50256 || hf.VocabSize() != 50257 {
		t.Errorf("EOS = %d, VocabSize = %d, want 50256, 50257", hf.EOS(), hf.VocabSize())
	}
	if got := hf.EncodeSpecial("a<|endoftext|>"); !slices.Equal(got, tt.EncodeSpecial("a<|endoftext|>")) {
		t.Errorf("EncodeSpecial = %v, tiktoken %v", got, tt.EncodeSpecial("a<|endoftext|>"))
	}
}

func BenchmarkEncodeR50kJSON(b *testing.B) {
	tk := loadR50kJSON(b)
	b.SetBytes(int64(len(mixedText)))
	for b.Loop() {
		tk.Encode(mixedText)
	}
}

// FuzzMatchesTiktokenR50k checks that any valid text encodes to tiktoken's ids and
// decodes back to itself.
func FuzzMatchesTiktokenR50k(f *testing.F) {
	hf := loadR50kJSON(f)
	tt, err := Load("r50k_base")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range strings.Split(mixedText, "\n") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if !utf8.ValidString(text) {
			return // both sides would see U+FFFD for the bad bytes, differently
		}
		got, want := hf.Encode(text), tt.Encode(text)
		if !slices.Equal(got, want) {
			t.Fatalf("Encode(%q) = %v, tiktoken %v", text, got, want)
		}
		if back := hf.Decode(got); back != text {
			t.Fatalf("Decode(Encode(%q)) = %q", text, back)
		}
	})
}

func BenchmarkEncodeR50kTiktoken(b *testing.B) {
	tk, err := Load("r50k_base")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(mixedText)))
	for b.Loop() {
		tk.Encode(mixedText)
	}
}

func TestConcurrentEncode(t *testing.T) {
	hf := loadR50kJSON(t)
	want := hf.Encode(mixedText)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 5 {
				if got := hf.Encode(mixedText); !slices.Equal(got, want) {
					t.Error("concurrent Encode gave different ids")
					return
				}
			}
		})
	}
	wg.Wait()
}
