// Command cpuburn keeps a fixed share of the machine busy: each of -n goroutines spins
// for -on out of every -period. It stands in for the load generator and request handling
// when measuring how ONNX Runtime's throughput reacts to sharing its cores:
//
//	go run ./tools/cpuburn -on 150us -n 1 &   # 15% of one core
//	./bin/ferry bench --engine examples/models/mlp
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	on := flag.Duration("on", 150*time.Microsecond, "busy time per period")
	period := flag.Duration("period", time.Millisecond, "length of one period")
	n := flag.Int("n", 1, "goroutines, each busy -on per -period")
	flag.Parse()
	if *on <= 0 || *period <= *on || *n < 1 {
		fmt.Fprintln(os.Stderr, "cpuburn: need 0 < -on < -period and -n >= 1")
		os.Exit(2)
	}
	for range *n {
		go burn(*on, *period)
	}
	select {}
}

// burn spins for on, sleeps the rest of the period, forever.
func burn(on, period time.Duration) {
	for {
		start := time.Now()
		for time.Since(start) < on {
		}
		time.Sleep(period - on)
	}
}
