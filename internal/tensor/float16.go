package tensor

import "math"

// FP16 and BF16 are the 16-bit float formats V2 carries. JSON and Go have no notation
// for them, so transports and the load generator convert through these functions, the
// one implementation in Ferry: narrowing rounds once from float64 (to nearest, ties to
// even, subnormals included), widening is exact.

// FP16FromFloat64 rounds f to IEEE 754 half precision. ok is false when f is finite but
// too large for the format; h is then the infinity of f's sign, which IEEE rounding
// gives, and a caller may refuse the value instead of sending infinity to a model.
func FP16FromFloat64(f float64) (h uint16, ok bool) { return fp16.fromFloat64(f) }

// BF16FromFloat64 rounds f to bfloat16, as FP16FromFloat64 does to half precision.
func BF16FromFloat64(f float64) (h uint16, ok bool) { return bf16.fromFloat64(f) }

// FP16ToFloat32 widens IEEE 754 half-precision bits to a float32, exactly (a NaN keeps
// its payload).
func FP16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: renormalise
		e := uint32(127 - 15 + 1)
		for frac&0x400 == 0 {
			frac <<= 1
			e--
		}
		frac &= 0x3ff
		return math.Float32frombits(sign | e<<23 | frac<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}

// BF16ToFloat32 widens bfloat16 bits to a float32, exactly: they are its top half.
func BF16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// smallFloat describes a 16-bit float format: a sign bit, then 15-mantBits exponent bits.
type smallFloat struct {
	mantBits uint // stored mantissa bits
	bias     int  // exponent bias; the largest exponent is bias, the smallest normal 1-bias
}

var (
	fp16 = smallFloat{mantBits: 10, bias: 15}
	bf16 = smallFloat{mantBits: 7, bias: 127}
)

func (sf smallFloat) fromFloat64(f float64) (bits uint16, ok bool) {
	b := math.Float64bits(f)
	sign := uint16(b>>48) & 0x8000
	exp := int(b>>52) & 0x7ff
	mant := b & (1<<52 - 1)
	expMask := uint16(1<<(15-sf.mantBits) - 1)
	inf := sign | expMask<<sf.mantBits
	switch {
	case exp == 0x7ff:
		if mant != 0 {
			return inf | 1<<(sf.mantBits-1), true // a quiet NaN
		}
		return inf, true
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
		return inf, false
	}
	return sign | uint16(e+sf.bias)<<sf.mantBits | uint16(q)&(1<<sf.mantBits-1), true
}
