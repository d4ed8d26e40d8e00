package periodic

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestRunCallsEveryIntervalUntilTheContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 350*time.Millisecond)
		defer cancel()
		var at []time.Duration
		start := time.Now()
		Run(ctx, 100*time.Millisecond, func(context.Context) { at = append(at, time.Since(start)) })
		want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
		if len(at) != len(want) {
			t.Fatalf("called at %v, want %v", at, want)
		}
		for i := range want {
			if at[i] != want[i] {
				t.Errorf("call %d at %v, want %v", i, at[i], want[i])
			}
		}
	})
}
