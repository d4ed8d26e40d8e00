package httpapi

import "math"

// 16-bit float formats JSON has no notation for: clients send ordinary numbers and the
// server rounds them (to nearest, ties to even) into the format's bits.
type smallFloat struct {
	mantBits uint // stored mantissa bits
	bias     int  // exponent bias; the largest exponent is bias, the smallest normal 1-bias
}

var (
	fp16 = smallFloat{mantBits: 10, bias: 15}
	bf16 = smallFloat{mantBits: 7, bias: 127}
)

// fromFloat64 rounds f to the format. ok is false when f is finite but too large for
// the format (it would round to infinity), so a caller can refuse it instead of
// silently sending infinity to a model.
func (sf smallFloat) fromFloat64(f float64) (bits uint16, ok bool) {
	b := math.Float64bits(f)
	sign := uint16(b>>48) & 0x8000
	exp := int(b>>52) & 0x7ff
	mant := b & (1<<52 - 1)
	expMask := uint16(1<<(15-sf.mantBits) - 1)
	switch {
	case exp == 0x7ff: // JSON cannot carry these; kept for completeness
		if mant != 0 {
			return sign | expMask<<sf.mantBits | 1<<(sf.mantBits-1), true
		}
		return sign | expMask<<sf.mantBits, true
	case exp == 0:
		return sign, true // zero, or a float64 subnormal far below either format's range
	}
	e := exp - 1023
	m := mant | 1<<52
	minNormal := 1 - sf.bias
	shift := 52 - sf.mantBits
	if e < minNormal {
		shift += uint(minNormal - e) // subnormal in the target format
	}
	if shift > 60 {
		return sign, true // rounds to zero
	}
	q := m >> shift
	rem := m & (1<<shift - 1)
	half := uint64(1) << (shift - 1)
	if rem > half || (rem == half && q&1 == 1) {
		q++
	}
	if e < minNormal {
		// q counts subnormal units; a carry into bit mantBits makes it the smallest
		// normal, which the same bit pattern already encodes.
		return sign | uint16(q), true
	}
	if q == 1<<(sf.mantBits+1) {
		q >>= 1
		e++
	}
	if e > sf.bias {
		return 0, false
	}
	return sign | uint16(e+sf.bias)<<sf.mantBits | uint16(q)&(1<<sf.mantBits-1), true
}

// toFloat64 widens the format's bits exactly.
func (sf smallFloat) toFloat64(h uint16) float64 {
	expBits := 15 - sf.mantBits
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>sf.mantBits) & (1<<expBits - 1)
	mant := float64(h & (1<<sf.mantBits - 1))
	scale := math.Ldexp(1, -int(sf.mantBits))
	switch exp {
	case 0:
		return sign * math.Ldexp(mant*scale, 1-sf.bias)
	case 1<<expBits - 1:
		if mant != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	}
	return sign * math.Ldexp(1+mant*scale, exp-sf.bias)
}
