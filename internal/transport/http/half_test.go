package httpapi

import (
	"math"
	"testing"
)

func TestSmallFloatRounding(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format smallFloat
		in     float64
		want   uint16
		ok     bool
	}{
		{"fp16 one", fp16, 1, 0x3c00, true},
		{"fp16 negative zero", fp16, math.Copysign(0, -1), 0x8000, true},
		{"fp16 max", fp16, 65504, 0x7bff, true},
		{"fp16 rounds down below overflow", fp16, 65519.99, 0x7bff, true},
		{"fp16 overflow", fp16, 65520, 0, false},
		{"fp16 smallest normal", fp16, 6.103515625e-05, 0x0400, true},
		{"fp16 largest subnormal", fp16, 6.097555160522461e-05, 0x03ff, true},
		{"fp16 smallest subnormal", fp16, 5.960464477539063e-08, 0x0001, true},
		{"fp16 half of smallest subnormal ties to even zero", fp16, 2.9802322387695312e-08, 0x0000, true},
		{"fp16 above half rounds up", fp16, 2.99e-08, 0x0001, true},
		{"fp16 tie to even down", fp16, 1 + 1.0/2048, 0x3c00, true},
		{"fp16 tie to even up", fp16, 1 + 3.0/2048, 0x3c02, true},
		{"fp16 subnormal carries into normal", fp16, 6.102e-05, 0x0400, true},
		{"fp16 tiny", fp16, 1e-300, 0x0000, true},
		{"bf16 one", bf16, 1, 0x3f80, true},
		{"bf16 pi", bf16, math.Pi, 0x4049, true},
		{"bf16 max", bf16, 3.3895313892515355e38, 0x7f7f, true},
		{"bf16 overflow", bf16, 3.4e38, 0, false},
		{"bf16 subnormal", bf16, 9.183549615799121e-41, 0x0001, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.format.fromFloat64(tc.in)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Errorf("fromFloat64(%g) = %#04x, %v; want %#04x, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestSmallFloatRoundTrip checks every finite 16-bit pattern survives widening and
// rounding back.
func TestSmallFloatRoundTrip(t *testing.T) {
	for _, f := range []smallFloat{fp16, bf16} {
		for h := 0; h < 1<<16; h++ {
			v := f.toFloat64(uint16(h))
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			if got, ok := f.fromFloat64(v); !ok || got != uint16(h) {
				t.Fatalf("%+v: %#04x -> %g -> %#04x (ok=%v)", f, h, v, got, ok)
			}
		}
	}
}
