package main

import (
	"log/slog"
	"time"
)

// readableDurations is newLogger's ReplaceAttr: a duration is written as a string in
// units ("took":"19ms"), not as the nanosecond integer slog's JSON handler writes, so
// a person reading the log or a query over it needs no arithmetic.
func readableDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, roundDuration(a.Value.Duration()).String())
	}
	return a
}

// roundDuration keeps three significant digits (19.4567ms → 19.5ms, 1.23456s →
// 1.23s): a log line reports a cost, and more digits are noise a reader has to skip.
func roundDuration(d time.Duration) time.Duration {
	step := time.Duration(1)
	for abs := d.Abs(); abs/step >= 1000; step *= 10 {
	}
	return d.Round(step)
}
