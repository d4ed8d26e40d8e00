// Command batchbench measures what the dynamic batcher's adaptive queue delay buys over
// no batching and over Triton's fixed delay (issue 14's benchmark), in one run on this
// machine:
//
//	go run ./tools/batchbench                       # http and grpc at 1,4,16,64 clients
//	go run ./tools/batchbench --duration 1s --warmup 300ms --rounds 1 --concurrency 1,16
//	make bench-batching BENCH_FLAGS="--markdown /tmp/batching.md"
//
// It writes a temporary model repository holding the mlp example under four configs
// (no batching, fixed 5 ms, fixed 2 ms, adaptive with a 5 ms bound; --greedy adds delay 0),
// starts `ferry serve` on it, and at each protocol and concurrency runs `ferry bench`
// against every config in turn, --rounds times, so that the machine's noise hits all
// configs alike. Each config's figures are the median over the rounds. Then it prints
// one table per protocol, and why the batchers ran their batches, from the server's
// ferry_batch_queue_delay_seconds_count{reason} over each level.
package main
