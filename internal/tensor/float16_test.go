package tensor

import (
	"math"
	"testing"
)

func TestFromFloat64Rounding(t *testing.T) {
	for _, tc := range []struct {
		name  string
		round func(float64) (uint16, bool)
		in    float64
		want  uint16
		ok    bool
	}{
		{"fp16 one", FP16FromFloat64, 1, 0x3c00, true},
		{"fp16 negative zero", FP16FromFloat64, math.Copysign(0, -1), 0x8000, true},
		{"fp16 -2.5", FP16FromFloat64, -2.5, 0xc100, true},
		{"fp16 0.1", FP16FromFloat64, 0.1, 0x2e66, true},
		{"fp16 max", FP16FromFloat64, 65504, 0x7bff, true},
		{"fp16 rounds down below overflow", FP16FromFloat64, 65519.99, 0x7bff, true},
		{"fp16 overflow is infinity, not ok", FP16FromFloat64, 65520, 0x7c00, false},
		{"fp16 negative overflow", FP16FromFloat64, -1e10, 0xfc00, false},
		{"fp16 infinity", FP16FromFloat64, math.Inf(-1), 0xfc00, true},
		{"fp16 NaN is quiet", FP16FromFloat64, math.NaN(), 0x7e00, true},
		{"fp16 smallest normal", FP16FromFloat64, 6.103515625e-05, 0x0400, true},
		{"fp16 largest subnormal", FP16FromFloat64, 6.097555160522461e-05, 0x03ff, true},
		{"fp16 smallest subnormal", FP16FromFloat64, 5.960464477539063e-08, 0x0001, true},
		{"fp16 half of smallest subnormal ties to even zero", FP16FromFloat64, 2.9802322387695312e-08, 0x0000, true},
		{"fp16 above half rounds up", FP16FromFloat64, 2.99e-08, 0x0001, true},
		{"fp16 0.75 units rounds up", FP16FromFloat64, math.Ldexp(3, -26), 0x0001, true},
		{"fp16 tie to even down", FP16FromFloat64, 1 + 1.0/2048, 0x3c00, true},
		{"fp16 tie to even up", FP16FromFloat64, 1 + 3.0/2048, 0x3c02, true},
		// Rounding through float32 first would land on the tie and round up to 0x40a2.
		{"fp16 just below a tie rounds once", FP16FromFloat64, 2.315429686425071, 0x40a1, true},
		{"fp16 subnormal carries into normal", FP16FromFloat64, 6.102e-05, 0x0400, true},
		{"fp16 tiny", FP16FromFloat64, 1e-300, 0x0000, true},
		{"bf16 one", BF16FromFloat64, 1, 0x3f80, true},
		{"bf16 pi", BF16FromFloat64, math.Pi, 0x4049, true},
		{"bf16 max", BF16FromFloat64, 3.3895313892515355e38, 0x7f7f, true},
		{"bf16 overflow is infinity, not ok", BF16FromFloat64, 3.4e38, 0x7f80, false},
		{"bf16 NaN is quiet", BF16FromFloat64, math.NaN(), 0x7fc0, true},
		{"bf16 subnormal", BF16FromFloat64, 9.183549615799121e-41, 0x0001, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.round(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Errorf("round(%g) = %#04x, %v; want %#04x, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestToFloat32(t *testing.T) {
	for bits, want := range map[uint16]float64{0x3c00: 1, 0xc100: -2.5, 0x7bff: 65504, 0x0001: math.Ldexp(1, -24),
		0x03ff: math.Ldexp(1023, -24), 0x8000: math.Copysign(0, -1), 0x0400: math.Ldexp(1, -14),
		0x7c00: math.Inf(1), 0xfc00: math.Inf(-1), 0x2e66: 0.0999755859375} {
		if got := FP16ToFloat32(bits); float64(got) != want || math.Signbit(float64(got)) != math.Signbit(want) {
			t.Errorf("FP16ToFloat32(%#04x) = %g, want %g", bits, got, want)
		}
	}
	if got := FP16ToFloat32(0x7e00); got == got {
		t.Errorf("FP16ToFloat32(0x7e00) = %g, want NaN", got)
	}
	if got := BF16ToFloat32(0xc020); got != -2.5 {
		t.Errorf("BF16ToFloat32(0xc020) = %g, want -2.5", got)
	}
}

// TestRoundTrip checks every finite 16-bit pattern survives widening and rounding back.
func TestRoundTrip(t *testing.T) {
	for _, f := range []struct {
		name  string
		widen func(uint16) float32
		round func(float64) (uint16, bool)
	}{{"FP16", FP16ToFloat32, FP16FromFloat64}, {"BF16", BF16ToFloat32, BF16FromFloat64}} {
		for h := 0; h < 1<<16; h++ {
			v := float64(f.widen(uint16(h)))
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			if got, ok := f.round(v); !ok || got != uint16(h) {
				t.Fatalf("%s: %#04x -> %g -> %#04x (ok=%v)", f.name, h, v, got, ok)
			}
		}
	}
}
