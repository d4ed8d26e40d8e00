package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// StreamDecoder turns ids into text one at a time for a stream. A token may end in
// the middle of a UTF-8 character (byte-level BPE splits emoji and CJK across
// tokens); those bytes are held until the character completes, so each piece of
// text a client gets is valid UTF-8. It is not safe for concurrent use.
type StreamDecoder struct {
	t    Tokenizer
	held []byte // the start of an unfinished character, at most utf8.UTFMax-1 bytes
}

// NewStreamDecoder returns a StreamDecoder over t's tokens.
func NewStreamDecoder(t Tokenizer) *StreamDecoder { return &StreamDecoder{t: t} }

// Add returns the text that id completes: the held bytes and id's bytes up to the
// last whole character. Bytes that cannot start or continue a character are
// returned as U+FFFD at once rather than held.
func (d *StreamDecoder) Add(id int) string {
	d.held = append(d.held, d.t.TokenBytes(id)...)
	keep := incompleteTail(d.held)
	out := valid(d.held[:len(d.held)-keep])
	d.held = append(d.held[:0], d.held[len(d.held)-keep:]...)
	return out
}

// Flush returns what is held (an unfinished character, as U+FFFD) and resets the
// decoder.
func (d *StreamDecoder) Flush() string {
	out := valid(d.held)
	d.held = d.held[:0]
	return out
}

// incompleteTail is how many bytes at the end of b begin a character that more
// bytes could complete.
func incompleteTail(b []byte) int {
	for n := 1; n < utf8.UTFMax && n <= len(b); n++ {
		c := b[len(b)-n]
		if c < 0x80 {
			return 0 // ASCII: nothing unfinished
		}
		if c >= 0xC0 { // a lead byte: unfinished if it wants more than n bytes
			if need := leadLen(c); need > n {
				return n
			}
			return 0
		}
	}
	return 0
}

// leadLen is the length of the character a lead byte starts (0 for an invalid lead).
func leadLen(c byte) int {
	switch {
	case c >= 0xF8:
		return 0
	case c >= 0xF0:
		return 4
	case c >= 0xE0:
		return 3
	case c >= 0xC2:
		return 2
	}
	return 0
}

// valid is b as a string with each invalid byte replaced by U+FFFD.
func valid(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var s strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		s.WriteRune(r) // utf8.RuneError for a bad byte, which is U+FFFD
		b = b[n:]
	}
	return s.String()
}
