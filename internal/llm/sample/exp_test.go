package sample

import (
	"math"
	"testing"
)

func TestExpNeg(t *testing.T) {
	worst := 0.0
	for x := -745.0; x <= 0; x += 0.0137 {
		want := math.Exp(x)
		if want == 0 || want < 1e-300 {
			continue
		}
		worst = max(worst, math.Abs(expNeg(x)-want)/want)
	}
	if worst > 3e-7 {
		t.Errorf("expNeg's worst relative error is %g, want <= 3e-7", worst)
	}
	if expNeg(math.Inf(-1)) != 0 || expNeg(-800) != 0 || expNeg(0) != 1 {
		t.Errorf("expNeg(-Inf, -800, 0) = %v, %v, %v", expNeg(math.Inf(-1)), expNeg(-800), expNeg(0))
	}
}
