package main

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	"github.com/ferryml/ferry/internal/monitor/accesslog"
	"github.com/ferryml/ferry/internal/transport/middleware"
)

// accesslog.go wires --access-log: one JSON line per REST request and gRPC call,
// written by a goroutine of its own from a bounded buffer (package accesslog).

type accessLogConfig struct {
	path string
}

func (c *accessLogConfig) addFlags(f *pflag.FlagSet) {
	f.StringVar(&c.path, "access-log", "", "append one JSON line per request (method, route, status, duration_s, bytes_in/out, model, version, request_id, trace_id, tenant) to this file; off when empty")
}

// accessLog is the open access log of a server; the zero value is off, and its
// methods then add nothing.
type accessLog struct {
	log  *accesslog.Log // nil: off
	file *os.File
	stop context.CancelFunc
	done chan error
}

// openAccessLog opens --access-log's file for appending (it starts no goroutine: start).
func openAccessLog(c accessLogConfig) (*accessLog, error) {
	if c.path == "" {
		return &accessLog{}, nil
	}
	f, err := os.OpenFile(c.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("--access-log: %w", err)
	}
	return &accessLog{log: accesslog.New(f, 0), file: f}, nil
}

// start runs the writer until finish.
func (a *accessLog) start() {
	if a.log == nil {
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	a.stop, a.done = stop, make(chan error, 1)
	go func() { a.done <- a.log.Run(ctx) }()
}

// finish writes what is buffered and closes the file; call it once the transports have
// drained, so their last requests are in it.
func (a *accessLog) finish() error {
	if a.log == nil || a.stop == nil {
		return nil
	}
	a.stop()
	err := <-a.done
	if cerr := a.file.Close(); err == nil {
		err = cerr
	}
	if n := a.log.Dropped(); n > 0 && err == nil {
		err = fmt.Errorf("access log: %d lines dropped (the disk did not keep up)", n)
	}
	return err
}

// httpLayer logs each request through the REST root (outermost, beside tracing).
func (a *accessLog) httpLayer(mux *http.ServeMux) middleware.Layer {
	return a.log.HTTP(func(r *http.Request) string {
		_, pattern := mux.Handler(r)
		return pattern
	})
}

// grpcOptions log each call (before the other interceptors).
func (a *accessLog) grpcOptions() []grpc.ServerOption { return a.log.GRPCServerOptions() }

// register exports the lines written and dropped, when the access log is on.
func (a *accessLog) register(reg prometheus.Registerer) {
	if a.log == nil {
		return
	}
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ferry_access_log_lines_total", Help: "Access log lines written."},
			func() float64 { return float64(a.log.Written()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ferry_access_log_dropped_total", Help: "Access log lines dropped because the writer fell behind (the buffer was full)."},
			func() float64 { return float64(a.log.Dropped()) }),
	)
}
