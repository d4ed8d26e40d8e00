package sample

import "math"

// expNeg is exp(x) for x <= 0, to about 2e-7 relative error: 2^n·2^f with f in
// [-0.5, 0.5] and a degree-6 Taylor polynomial for 2^f. The sampler takes
// exponentials of the whole vocabulary twice per token; math.Exp made that most of
// the time per token, and float32 logits carry no more precision than this.
func expNeg(x float64) float64 {
	if !(x >= -700) {
		return 0 // also -Inf, and NaN from a broken model's logits
	}
	t := x * math.Log2E
	n := int64(t - 0.5) // rounds to nearest: t <= 0 and conversion truncates
	f := (t - float64(n)) * math.Ln2
	p := 1 + f*(1+f*(1.0/2+f*(1.0/6+f*(1.0/24+f*(1.0/120+f*(1.0/720))))))
	return math.Float64frombits(uint64(n+1023)<<52) * p
}
