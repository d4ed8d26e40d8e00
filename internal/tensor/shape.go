package tensor

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Shape is a tensor's dimensions. In model metadata -1 marks a variable dimension; a
// request's shape has no negative entries.
type Shape []int64

// NumElements is the product of the dimensions. It fails on a negative dimension or a
// product that does not fit in an int64, so a hostile shape cannot wrap to a small size.
func (s Shape) NumElements() (int64, error) {
	n := int64(1)
	for _, d := range s {
		if d < 0 {
			return 0, fmt.Errorf("shape %v: negative dimension %d", s, d)
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, fmt.Errorf("shape %v: element count overflows", s)
		}
		n *= d
	}
	return n, nil
}

// Matches reports whether a concrete shape fits a model shape in which -1 matches any size.
func (s Shape) Matches(model Shape) bool {
	if len(s) != len(model) {
		return false
	}
	for i, d := range model {
		if d != -1 && d != s[i] {
			return false
		}
	}
	return true
}

// Equal reports whether two shapes are identical.
func (s Shape) Equal(o Shape) bool {
	if len(s) != len(o) {
		return false
	}
	for i := range s {
		if s[i] != o[i] {
			return false
		}
	}
	return true
}

// String formats the shape as [d0,d1,...], the form error messages use.
func (s Shape) String() string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(d, 10))
	}
	b.WriteByte(']')
	return b.String()
}

// Clone returns a copy that does not share the backing array.
func (s Shape) Clone() Shape { return append(Shape(nil), s...) }
