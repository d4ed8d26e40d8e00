package rawgrpc

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// BenchmarkVsGRPCGo makes unary calls from 64 goroutines to one grpc-go server in this
// process, in alternating slices through rawgrpc and through grpc-go's client, and
// reports the process's CPU per call for each and their ratio. The server is the same
// for both, so the difference is the clients'.
//
//	go test -run=NONE -bench=VsGRPCGo -benchtime=1x ./internal/rawgrpc/
func BenchmarkVsGRPCGo(b *testing.B) {
	ts := startServer(b, "127.0.0.1:0")
	raw, err := NewClient(ts.addr, Options{Timeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	cc, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(bytesCodec{})))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	payload := make([]byte, 1024)
	msg, _ := raw.Encode(payload)
	calls := map[string]func(context.Context) error{
		"rawgrpc": func(ctx context.Context) error {
			_, err := raw.Call(ctx, "/test.T/Echo", msg)
			return err
		},
		"grpc-go": func(ctx context.Context) error {
			var reply []byte
			return cc.Invoke(ctx, "/test.T/Echo", &payload, &reply)
		},
	}
	const workers, perSlice, rounds = 64, 200, 5
	cpu := map[string]time.Duration{}
	for range b.N * rounds {
		for _, name := range []string{"rawgrpc", "grpc-go"} {
			before := processCPU(b)
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for range perSlice {
						ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
						err := calls[name](ctx)
						cancel()
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			cpu[name] += processCPU(b) - before
		}
	}
	n := float64(b.N * rounds * workers * perSlice)
	rawUS, goUS := cpu["rawgrpc"].Seconds()*1e6/n, cpu["grpc-go"].Seconds()*1e6/n
	b.ReportMetric(rawUS, "rawgrpc-cpu-µs/call")
	b.ReportMetric(goUS, "grpc-go-cpu-µs/call")
	b.ReportMetric(rawUS/goUS, "ratio")
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
