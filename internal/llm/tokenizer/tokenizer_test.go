package tokenizer

import (
	"slices"
	"testing"
)

// The ids below are the published ones (llm.md §4.4: "Hello world" in each encoding).
func TestLoadKnownIDs(t *testing.T) {
	for _, tc := range []struct {
		name string
		want []int
		eos  int
	}{
		{"gpt2", []int{15496, 995}, 50256},
		{"r50k_base", []int{15496, 995}, 50256},
		{"cl100k_base", []int{9906, 1917}, 100257},
		{"o200k_base", []int{13225, 2375}, 199999},
	} {
		tk, err := Load(tc.name)
		if err != nil {
			t.Fatalf("Load(%q): %v", tc.name, err)
		}
		if got := tk.Encode("Hello world"); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Encode(Hello world) = %v, want %v", tc.name, got, tc.want)
		}
		if got := tk.Decode(tc.want); got != "Hello world" {
			t.Errorf("%s: Decode = %q", tc.name, got)
		}
		if tk.EOS() != tc.eos {
			t.Errorf("%s: EOS = %d, want %d", tc.name, tk.EOS(), tc.eos)
		}
	}
}

func TestSpecialTextIsOrdinary(t *testing.T) {
	tk, err := Load("r50k_base")
	if err != nil {
		t.Fatal(err)
	}
	if ids := tk.Encode("<|endoftext|>"); slices.Contains(ids, 50256) {
		t.Errorf("Encode turned the text <|endoftext|> into the special id: %v", ids)
	}
	if ids := tk.EncodeSpecial("a<|endoftext|>"); !slices.Contains(ids, 50256) {
		t.Errorf("EncodeSpecial did not: %v", ids)
	}
	if got := tk.VocabSize(); got != 50257 {
		t.Errorf("VocabSize = %d, want 50257", got)
	}
}

func TestLoadUnknown(t *testing.T) {
	if _, err := Load("nope"); err == nil {
		t.Fatal("Load(nope) succeeded")
	}
}
