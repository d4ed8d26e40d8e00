// Package drift watches the distribution of every model's input and output columns on
// live traffic and compares it with a baseline. It is a core.Tap: Finished copies the
// watched tensors' bytes into a bounded queue (whole records are dropped and counted
// when the worker falls behind) and one goroutine (Run) bins the values into fixed-size
// windows, so its memory does not grow with traffic. Reports compare the last closed
// window (or the open one) with the baseline Profile using the statistics of
// drift/stats, with Evidently's default method choice unless configured.
package drift
