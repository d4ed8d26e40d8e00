package v2http

import (
	"unicode/utf16"
	"unicode/utf8"

	"github.com/ferryml/ferry/internal/core"
)

// scanner is a minimal JSON tokenizer over an in-memory body. The infer decoder drives it
// directly so tensor data goes from text to little-endian bytes without an intermediate
// []any, and so limits can be applied as soon as a shape is known. It validates JSON
// syntax as it goes; every error names the byte offset.
type scanner struct {
	buf []byte
	pos int
}

func (s *scanner) errorf(format string, args ...any) error {
	return core.Invalidf("malformed JSON at offset %d: "+format, append([]any{s.pos}, args...)...)
}

// peek skips whitespace and returns the next byte, or 0 at the end of the input.
func (s *scanner) peek() byte {
	for s.pos < len(s.buf) {
		switch c := s.buf[s.pos]; c {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return c
		}
	}
	return 0
}

func (s *scanner) expect(c byte) error {
	if got := s.peek(); got != c {
		return s.errorf("expected %q, found %s", c, s.describe())
	}
	s.pos++
	return nil
}

// describe names the next token for error messages.
func (s *scanner) describe() string {
	switch c := s.peek(); {
	case s.pos >= len(s.buf):
		return "end of input"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || (c >= '0' && c <= '9'):
		return "a number"
	default:
		return "character " + quoteByte(c)
	}
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return "'" + string(rune(c)) + "'"
	}
	const hex = "0123456789abcdef"
	return "0x" + string([]byte{hex[c>>4], hex[c&15]})
}

// end checks that only whitespace follows the top-level value.
func (s *scanner) end() error {
	if s.peek() != 0 || s.pos < len(s.buf) {
		return s.errorf("expected the end of the body after the top-level value, found %s", s.describe())
	}
	return nil
}

// object calls fn for each key of an object; fn must consume the value. Keys are only
// valid during the call (they may alias the input).
func (s *scanner) object(fn func(key []byte) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.pos++
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.errorf("expected an object key, found %s", s.describe())
		}
		key, _, err := s.bytesValue(nil)
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := fn(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.errorf("expected ',' or '}' in object, found %s", s.describe())
		}
	}
}

// array calls fn for each element of an array; fn must consume the element.
func (s *scanner) array(fn func(i int) error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.pos++
		return nil
	}
	for i := 0; ; i++ {
		if err := fn(i); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return s.errorf("expected ',' or ']' in array, found %s", s.describe())
		}
	}
}

// str reads a JSON string.
func (s *scanner) str() (string, error) {
	if s.peek() != '"' {
		return "", s.errorf("expected a string, found %s", s.describe())
	}
	b, _, err := s.bytesValue(nil)
	return string(b), err
}

// bytesValue reads a JSON string at s.pos (which must be '"'). Without escapes it returns
// a slice of the input and leaves dst untouched; with escapes it appends the decoded
// bytes to dst, returns that and reports escaped. Bytes that are not valid UTF-8 pass
// through unchanged, so BYTES elements keep their exact contents.
func (s *scanner) bytesValue(dst []byte) (out []byte, escaped bool, err error) {
	start := s.pos + 1
	for i := start; i < len(s.buf); i++ {
		switch c := s.buf[i]; {
		case c == '"':
			s.pos = i + 1
			return s.buf[start:i], false, nil
		case c == '\\':
			out, err := s.unescape(append(dst, s.buf[start:i]...), i)
			return out, true, err
		case c < 0x20:
			s.pos = i
			return nil, false, s.errorf("control character %s in string", quoteByte(c))
		}
	}
	s.pos = len(s.buf)
	return nil, false, s.errorf("unterminated string")
}

// appendString appends the next JSON string's decoded bytes to dst.
func (s *scanner) appendString(dst []byte) ([]byte, error) {
	b, escaped, err := s.bytesValue(dst)
	if err != nil || escaped {
		return b, err
	}
	return append(dst, b...), nil
}

func (s *scanner) unescape(dst []byte, i int) ([]byte, error) {
	for i < len(s.buf) {
		c := s.buf[i]
		switch {
		case c == '"':
			s.pos = i + 1
			return dst, nil
		case c < 0x20:
			s.pos = i
			return nil, s.errorf("control character %s in string", quoteByte(c))
		case c != '\\':
			dst = append(dst, c)
			i++
			continue
		}
		if i+1 >= len(s.buf) {
			break
		}
		switch e := s.buf[i+1]; e {
		case '"', '\\', '/':
			dst = append(dst, e)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, n, ok := s.unicodeEscape(i)
			if !ok {
				s.pos = i
				return nil, s.errorf("invalid \\u escape in string")
			}
			dst = utf8.AppendRune(dst, r)
			i += n
			continue
		default:
			s.pos = i
			return nil, s.errorf("invalid escape '\\%c' in string", e)
		}
		i += 2
	}
	s.pos = len(s.buf)
	return nil, s.errorf("unterminated string")
}

// unicodeEscape decodes \uXXXX at i (joining a surrogate pair) and returns the rune and
// the number of input bytes used. A lone surrogate becomes U+FFFD, as encoding/json does.
func (s *scanner) unicodeEscape(i int) (rune, int, bool) {
	r, ok := hex4(s.buf, i+2)
	if !ok {
		return 0, 0, false
	}
	if !utf16.IsSurrogate(r) {
		return r, 6, true
	}
	if i+7 < len(s.buf) && s.buf[i+6] == '\\' && s.buf[i+7] == 'u' {
		if r2, ok := hex4(s.buf, i+8); ok {
			if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
				return d, 12, true
			}
		}
	}
	return utf8.RuneError, 6, true
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number reads a JSON number token, checking the JSON grammar (strconv alone would also
// accept hex, underscores and "inf"). isInt reports a token without fraction or exponent.
func (s *scanner) number() (tok []byte, isInt bool, err error) {
	start := s.pos
	i := start
	b := s.buf
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return nil, false, s.errorf("invalid number")
	}
	isInt = true
	if i < len(b) && b[i] == '.' {
		isInt = false
		i++
		if j := digits(b, i); j == i {
			s.pos = i
			return nil, false, s.errorf("invalid number: no digits after '.'")
		} else {
			i = j
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		isInt = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if j := digits(b, i); j == i {
			s.pos = i
			return nil, false, s.errorf("invalid number: no digits in exponent")
		} else {
			i = j
		}
	}
	s.pos = i
	return b[start:i], isInt, nil
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// literal consumes true, false or null.
func (s *scanner) literal(word string) error {
	if len(s.buf)-s.pos < len(word) || string(s.buf[s.pos:s.pos+len(word)]) != word {
		return s.errorf("invalid literal, expected %s", word)
	}
	s.pos += len(word)
	return nil
}

// boolean reads true or false.
func (s *scanner) boolean() (bool, error) {
	switch s.peek() {
	case 't':
		return true, s.literal("true")
	case 'f':
		return false, s.literal("false")
	}
	return false, s.errorf("expected a boolean, found %s", s.describe())
}

// skip consumes one value of any type. It is iterative (an explicit stack of open
// brackets) so deep nesting cannot exhaust the goroutine stack.
func (s *scanner) skip() error {
	var open []byte // '{' or '[' per nesting level
	for {
		if err := s.skipScalarOrOpen(&open); err != nil {
			return err
		}
		// After a value (or an opening bracket with no elements yet): close what is
		// finished, then expect a separator.
		for len(open) > 0 {
			top := open[len(open)-1]
			c := s.peek()
			if (top == '{' && c == '}') || (top == '[' && c == ']') {
				s.pos++
				open = open[:len(open)-1]
				continue
			}
			if c != ',' {
				return s.errorf("expected ',' or %s, found %s", closerName(top), s.describe())
			}
			s.pos++
			if top == '{' {
				if err := s.skipKey(); err != nil {
					return err
				}
			}
			break
		}
		if len(open) == 0 {
			return nil
		}
	}
}

func closerName(open byte) string {
	if open == '{' {
		return "'}'"
	}
	return "']'"
}

// skipScalarOrOpen consumes a scalar, or an opening bracket (pushing it) together with an
// immediately following closing bracket or first key.
func (s *scanner) skipScalarOrOpen(open *[]byte) error {
	for {
		switch c := s.peek(); c {
		case '{', '[':
			s.pos++
			if n := s.peek(); (c == '{' && n == '}') || (c == '[' && n == ']') {
				s.pos++
				return nil
			}
			*open = append(*open, c)
			if c == '{' {
				if err := s.skipKey(); err != nil {
					return err
				}
			}
			continue
		case '"':
			_, _, err := s.bytesValue(nil)
			return err
		case 't':
			return s.literal("true")
		case 'f':
			return s.literal("false")
		case 'n':
			return s.literal("null")
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			_, _, err := s.number()
			return err
		}
		return s.errorf("expected a value, found %s", s.describe())
	}
}

func (s *scanner) skipKey() error {
	if s.peek() != '"' {
		return s.errorf("expected an object key, found %s", s.describe())
	}
	if _, _, err := s.bytesValue(nil); err != nil {
		return err
	}
	return s.expect(':')
}
