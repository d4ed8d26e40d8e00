package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "batchbench:", err)
		os.Exit(1)
	}
}

// options are batchbench's flags.
type options struct {
	duration, warmup time.Duration
	rounds           int
	levels           []int
	protocols        []string
	ferry, mlp       string
	markdown         string
	keep, greedy     bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	var levels, protocols string
	fs := flag.NewFlagSet("batchbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measurement window of each ferry bench run")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before each window")
	fs.IntVar(&o.rounds, "rounds", 2, "times every config is run at each level, in turn with the others; the tables show the median")
	fs.StringVar(&levels, "concurrency", "1,4,16,64", "comma-separated client counts")
	fs.StringVar(&protocols, "protocols", "http,grpc", "comma-separated: http, grpc")
	fs.StringVar(&o.ferry, "ferry", "bin/ferry", "the ferry binary (make build)")
	fs.StringVar(&o.mlp, "mlp", "examples/models/mlp/1/model.onnx", "the mlp model file (make models)")
	fs.StringVar(&o.markdown, "markdown", "", "also write the tables as Markdown to this file")
	fs.BoolVar(&o.keep, "keep", false, "keep the generated model repository and the server's log")
	fs.BoolVar(&o.greedy, "greedy", false, "also measure mlp_greedy (dynamic batching with delay 0), for reference")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.levels, err = parseLevels(levels); err != nil {
		return o, err
	}
	if o.protocols, err = parseProtocols(protocols); err != nil {
		return o, err
	}
	if o.rounds < 1 || o.duration <= 0 || o.warmup < 0 {
		return o, fmt.Errorf("--rounds %d, --duration %v, --warmup %v: want at least 1 round and a positive duration",
			o.rounds, o.duration, o.warmup)
	}
	return o, nil
}

func parseLevels(s string) ([]int, error) {
	var levels []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--concurrency %q: want client counts of at least 1, comma-separated", s)
		}
		levels = append(levels, n)
	}
	return levels, nil
}

func parseProtocols(s string) ([]string, error) {
	var ps []string
	for f := range strings.SplitSeq(s, ",") {
		switch p := strings.TrimSpace(f); p {
		case "http", "grpc":
			ps = append(ps, p)
		default:
			return nil, fmt.Errorf("--protocols %q: want http and/or grpc, comma-separated", s)
		}
	}
	return ps, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if _, err := os.Stat(o.ferry); err != nil {
		return fmt.Errorf("--ferry: %w (make build writes bin/ferry)", err)
	}
	dir, err := os.MkdirTemp("", "batchbench-")
	if err != nil {
		return err
	}
	if o.keep {
		defer fmt.Fprintln(stderr, "batchbench: kept", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	cs := configs(o.greedy)
	repo := filepath.Join(dir, "models")
	if err := writeRepository(repo, o.mlp, cs); err != nil {
		return err
	}
	srv, err := startServer(ctx, o.ferry, repo, filepath.Join(dir, "server.log"))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, srv.stop()) }()
	fmt.Fprintf(stderr, "batchbench: ferry serve on http %s, grpc %s\n", srv.httpAddr, srv.grpcAddr)
	r := &runner{o: o, srv: srv, configs: cs, dir: dir, log: stderr}
	var tables []table
	for _, p := range o.protocols {
		levels, err := r.protocol(ctx, p)
		if err != nil {
			return err
		}
		tables = append(tables, perfTable(p, cs, levels, o.rounds), reasonsTable(p, cs, levels))
	}
	return writeTables(tables, stdout, o.markdown)
}

// writeTables prints the tables, and writes them as Markdown to path unless it is "".
func writeTables(tables []table, stdout io.Writer, path string) error {
	for _, t := range tables {
		if err := t.writeText(stdout); err != nil {
			return err
		}
	}
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--markdown: %w", err)
	}
	for _, t := range tables {
		if err := t.writeMarkdown(f); err != nil {
			f.Close()
			return fmt.Errorf("--markdown %s: %w", path, err)
		}
	}
	return f.Close()
}
