package tokenizer

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// fakeBytes is a Tokenizer whose ids stand for the given byte strings, so a test
// can split characters wherever it likes.
type fakeBytes struct {
	Tokenizer
	toks []string
}

func (f fakeBytes) TokenBytes(id int) []byte {
	if id < 0 || id >= len(f.toks) {
		return nil
	}
	return []byte(f.toks[id])
}

// streamAll adds every id and flushes, checking each piece is valid UTF-8.
func streamAll(t *testing.T, tk Tokenizer, ids []int) (string, []string) {
	t.Helper()
	d := NewStreamDecoder(tk)
	var pieces []string
	for _, id := range ids {
		pieces = append(pieces, d.Add(id))
	}
	pieces = append(pieces, d.Flush())
	for _, p := range pieces {
		if !utf8.ValidString(p) {
			t.Errorf("piece %q is not valid UTF-8", p)
		}
	}
	return strings.Join(pieces, ""), pieces
}

func TestStreamDecoderSplitCharacters(t *testing.T) {
	emoji, cjk := "😀", "日本"
	tk := fakeBytes{toks: []string{
		"a", emoji[:1], emoji[1:3], emoji[3:], // 0..3: an emoji in three tokens
		cjk[:2], cjk[2:4], cjk[4:], // 4..6: two CJK characters split across three tokens
		"\xff", emoji[:2], // 7: an invalid byte, 8: an emoji's start that never ends
	}}
	for _, tc := range []struct {
		name       string
		ids        []int
		want       string
		wantPieces []string
	}{
		{"an emoji over three tokens", []int{0, 1, 2, 3, 0}, "a😀a", []string{"a", "", "", "😀", "a", ""}},
		{"CJK over three tokens", []int{4, 5, 6}, "日本", []string{"", "日", "本", ""}},
		{"an invalid byte comes out at once", []int{7, 0}, "\uFFFDa", []string{"\uFFFD", "a", ""}},
		{"an unfinished character is flushed as U+FFFD", []int{0, 8}, "a\uFFFD\uFFFD", []string{"a", "", "\uFFFD\uFFFD"}},
		{"an unfinished character followed by ASCII", []int{8, 0}, "\uFFFD\uFFFDa", []string{"", "\uFFFD\uFFFDa", ""}},
		{"an id out of range adds nothing", []int{0, 99, -1, 0}, "aa", []string{"a", "", "", "a", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, pieces := streamAll(t, tk, tc.ids)
			if got != tc.want || strings.Join(pieces, "|") != strings.Join(tc.wantPieces, "|") {
				t.Errorf("ids %v: got %q in pieces %q, want %q in %q", tc.ids, got, pieces, tc.want, tc.wantPieces)
			}
		})
	}
}

func TestStreamDecoderR50k(t *testing.T) {
	tk, err := Load("r50k_base")
	if err != nil {
		t.Fatal(err)
	}
	text := "emoji 😀🎉👩‍👩‍👧 and 日本語のテキスト, 中文字符"
	ids := tk.Encode(text)
	got, pieces := streamAll(t, tk, ids)
	if got != text {
		t.Errorf("streamed %q, want %q", got, text)
	}
	split := 0
	for _, id := range ids {
		if !utf8.Valid(tk.TokenBytes(id)) {
			split++
		}
	}
	if split == 0 {
		t.Fatalf("no token of %q splits a character: the test proves nothing", text)
	}
	t.Logf("%d tokens, %d of them partial characters, %d pieces", len(ids), split, len(pieces))
}

// FuzzStreamDecoder checks that streaming token by token gives Decode's text when
// that text is valid UTF-8, and valid UTF-8 pieces always.
func FuzzStreamDecoder(f *testing.F) {
	f.Add("日本語 😀", "\xe6\x97", "\xa5\xff")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		tk := fakeBytes{toks: []string{a, b, c}}
		ids := []int{0, 1, 2, 1, 0}
		got, _ := streamAll(t, tk, ids)
		if all := a + b + c + b + a; utf8.ValidString(all) && got != all {
			t.Fatalf("streamed %q, want %q", got, all)
		}
	})
}
