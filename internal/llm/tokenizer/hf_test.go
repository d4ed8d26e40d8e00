package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func loadTiny(t *testing.T) Tokenizer {
	t.Helper()
	tk, err := LoadFile("testdata/tiny/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestLoadFileFixture(t *testing.T) {
	tk := loadTiny(t)
	for _, tc := range []struct {
		text string
		want []int
	}{
		{"hello world!", []int{13, 18, 0}},
		{"hello,world", []int{13, 1, 8, 15, 5, 2}},
		{"hollow", []int{4, 6, 11, 6, 8}}, // "l l" ranks before "l o"
		{"wold", []int{8, 6, 5, 2}},
		{"hex", []int{10}},             // x is not in the vocabulary and there is no unk_token: dropped, as Hugging Face does
		{"[NOTE]hello", []int{22, 13}}, // a non-special added token is always matched
	} {
		if got := tk.Encode(tc.text); !slices.Equal(got, tc.want) {
			t.Errorf("Encode(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
	if got := tk.Decode([]int{13, 18, 0}); got != "hello world!" {
		t.Errorf("Decode = %q", got)
	}
	if got, want := tk.EncodeSpecial("<|im_start|>hello<|endoftext|>"), []int{21, 13, 20}; !slices.Equal(got, want) {
		t.Errorf("EncodeSpecial = %v, want %v", got, want)
	}
	if got := tk.Encode("<|endoftext|>"); slices.Contains(got, 20) {
		t.Errorf("Encode turned the text <|endoftext|> into its special id: %v", got)
	}
	if tk.EOS() != 20 || tk.VocabSize() != 23 {
		t.Errorf("EOS = %d, VocabSize = %d, want 20, 23", tk.EOS(), tk.VocabSize())
	}
	if id, ok := tk.Special("<|im_start|>"); !ok || id != 21 {
		t.Errorf("Special(<|im_start|>) = %d, %v", id, ok)
	}
	if got := string(tk.TokenBytes(18)); got != " world" {
		t.Errorf("TokenBytes(18) = %q, want \" world\"", got)
	}
	if tk.TokenBytes(99) != nil || tk.TokenBytes(-1) != nil {
		t.Error("TokenBytes out of range is not nil")
	}
}

// rewrite loads the fixture as a map, lets edit change it, and parses the result.
func rewrite(t *testing.T, edit func(m map[string]any)) (*bpeTokenizer, error) {
	t.Helper()
	data, err := os.ReadFile("testdata/tiny/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	data, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return parseHF("edited", data, nil)
}

func TestMergesAsPairs(t *testing.T) {
	tk, err := rewrite(t, func(m map[string]any) {
		model := m["model"].(map[string]any)
		var pairs [][]string
		for _, l := range model["merges"].([]any) {
			pairs = append(pairs, strings.Split(l.(string), " "))
		}
		model["merges"] = pairs
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := tk.Encode("hello world"); !slices.Equal(got, []int{13, 18}) {
		t.Errorf("Encode with pair merges = %v", got)
	}
}

func TestLoadFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(m map[string]any)
		wantErr string
	}{
		{"a WordPiece model", func(m map[string]any) { m["model"].(map[string]any)["type"] = "WordPiece" },
			`model.type "WordPiece" is not supported (byte-level BPE only)`},
		{"a Metaspace pre-tokenizer", func(m map[string]any) { m["pre_tokenizer"] = map[string]any{"type": "Metaspace"} },
			`pre_tokenizer "Metaspace" is not supported`},
		{"no pre-tokenizer", func(m map[string]any) { m["pre_tokenizer"] = nil }, "pre_tokenizer is null"},
		{"a merge of unknown tokens", func(m map[string]any) { m["model"].(map[string]any)["merges"] = []string{"x y"} },
			`model.merges[0] "x" "y": a token or their join is not in model.vocab`},
		{"a merge line without a space", func(m map[string]any) { m["model"].(map[string]any)["merges"] = []string{"xy"} },
			`model.merges[0] "xy": want two tokens separated by one space`},
		{"a huge id", func(m map[string]any) { m["model"].(map[string]any)["vocab"].(map[string]any)["q"] = 1e12 },
			"id 1000000000000 is far past the"},
		{"a negative id", func(m map[string]any) { m["model"].(map[string]any)["vocab"].(map[string]any)["q"] = -1 },
			`model.vocab "q": negative id -1`},
		{"a WordPiece decoder", func(m map[string]any) { m["decoder"] = map[string]any{"type": "WordPiece"} },
			`decoder "WordPiece" is not supported`},
		{"an NFKC normalizer", func(m map[string]any) { m["normalizer"] = map[string]any{"type": "NFKC"} },
			`normalizer "NFKC" is not supported`},
		{"a bad Split regex", func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{
				map[string]any{"type": "Split", "pattern": map[string]any{"Regex": "(("}, "behavior": "Isolated"},
				map[string]any{"type": "ByteLevel", "use_regex": false}}}
		}, `pre_tokenizer 0: Split pattern "((":`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rewrite(t, tc.edit)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
	if _, err := LoadFile("testdata/none.json"); err == nil {
		t.Error("LoadFile of a missing file succeeded")
	}
}

func TestSplitSequenceAndConfigEOS(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("testdata/tiny/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	// Llama 3's shape: a Split regex, then ByteLevel without its own regex.
	s := strings.Replace(string(data), `"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}`,
		`"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
			{"type": "Split", "pattern": {"Regex": "(?i:'s|'t)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false},
			{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}`, 1)
	if s == string(data) {
		t.Fatal("fixture changed: pre_tokenizer not found")
	}
	write(t, filepath.Join(dir, "tokenizer.json"), s)
	write(t, filepath.Join(dir, "tokenizer_config.json"), `{"eos_token": {"content": "<|im_start|>"}}`)
	tk, err := LoadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := tk.Encode("hello world!"); !slices.Equal(got, []int{13, 18, 0}) {
		t.Errorf("Encode = %v", got)
	}
	if tk.EOS() != 21 {
		t.Errorf("EOS = %d, want 21 from tokenizer_config.json", tk.EOS())
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// FuzzParse checks that no tokenizer.json makes the loader or the encoder panic.
func FuzzParse(f *testing.F) {
	data, err := os.ReadFile("testdata/tiny/tokenizer.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data, "hello world")
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":[["a","b"]]},"pre_tokenizer":{"type":"ByteLevel"}}`), "abab")
	f.Add([]byte(`{"model":{"type":"Unigram"}}`), "")
	f.Add([]byte(`{`), "")
	f.Fuzz(func(t *testing.T, data []byte, text string) {
		tk, err := parseHF("fuzz", data, data)
		if err != nil {
			return
		}
		ids := tk.EncodeSpecial(text)
		for _, id := range ids {
			if id < 0 || id >= tk.VocabSize() {
				t.Fatalf("Encode(%q) gave id %d outside the vocabulary of %d", text, id, tk.VocabSize())
			}
		}
		_ = tk.Decode(append(ids, -1, 1<<30))
	})
}

func writeBytes(path string, data []byte) error { return os.WriteFile(path, data, 0o644) }
