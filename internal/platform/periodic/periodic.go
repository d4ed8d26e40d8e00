package periodic

import (
	"context"
	"time"
)

// Run calls f every interval until ctx ends; the first call comes one interval after
// Run starts. A call that outlasts the interval delays the next rather than overlapping
// it.
func Run(ctx context.Context, interval time.Duration, f func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f(ctx)
		}
	}
}
