package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// How long the server may take to start listening, to load its models, and to drain
// after SIGTERM (its --drain-grace is 5 s) before it is killed.
const (
	listenTimeout = 30 * time.Second
	readyTimeout  = 2 * time.Minute
	stopTimeout   = 15 * time.Second
)

// server is a `ferry serve` child process and the addresses it listens on.
type server struct {
	cmd      *exec.Cmd
	exited   chan struct{} // closed once cmd.Wait returned; waitErr is set then
	waitErr  error
	logPath  string
	httpAddr string
	grpcAddr string
	client   *http.Client
}

// startServer runs `ferry serve` on repo with free ports, logging to logPath, and
// returns once it is ready. A model that fails to load makes it exit (--exit-on-error),
// so the error names the model instead of a readiness timeout.
func startServer(ctx context.Context, ferry, repo, logPath string) (*server, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(ferry, "serve", "--model-repository", repo, "--http-port", "0", "--grpc-port", "0",
		"--log-format", "json", "--exit-on-error")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", ferry, err)
	}
	s := &server{cmd: cmd, exited: make(chan struct{}), logPath: logPath, client: &http.Client{Timeout: 5 * time.Second}}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := s.awaitListening(ctx); err != nil {
		return nil, errors.Join(err, s.stop())
	}
	if err := s.awaitReady(ctx); err != nil {
		return nil, errors.Join(err, s.stop())
	}
	return s, nil
}

// awaitListening reads the server's addresses from its "listening" log record: with
// port 0 it picks them itself, so no other process can take them in between.
func (s *server) awaitListening(ctx context.Context) error {
	return s.poll(ctx, listenTimeout, "log its listening addresses", func() (bool, error) {
		text, err := os.ReadFile(s.logPath)
		if err != nil {
			return false, err
		}
		s.httpAddr, s.grpcAddr = listeningAddrs(text)
		return s.httpAddr != "" && s.grpcAddr != "", nil
	})
}

// listeningAddrs finds the REST and gRPC addresses in the server's JSON log.
func listeningAddrs(log []byte) (httpAddr, grpcAddr string) {
	for line := range bytes.Lines(log) {
		var rec struct{ Msg, HTTP, GRPC string }
		if json.Unmarshal(line, &rec) == nil && rec.Msg == "listening" {
			return rec.HTTP, rec.GRPC
		}
	}
	return "", ""
}

func (s *server) awaitReady(ctx context.Context) error {
	url := "http://" + s.httpAddr + "/v2/health/ready"
	return s.poll(ctx, readyTimeout, "become ready at "+url, func() (bool, error) {
		resp, err := s.client.Get(url)
		if err != nil {
			return false, nil // not answering yet
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// poll calls done every 50 ms until it reports true, the server exits, or timeout.
func (s *server) poll(ctx context.Context, timeout time.Duration, what string, done func() (bool, error)) error {
	deadline := time.After(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.exited:
			return fmt.Errorf("ferry serve exited (%v) before it could %s; the end of its log:\n%s", s.waitErr, what, tail(s.logPath, 20))
		case <-deadline:
			return fmt.Errorf("ferry serve did not %s within %v; the end of its log:\n%s", what, timeout, tail(s.logPath, 20))
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM and waits for the drain, killing the server if it takes too long.
func (s *server) stop() error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop ferry serve: %w", err)
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(stopTimeout):
		s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("ferry serve was still draining %v after SIGTERM: killed", stopTimeout)
	}
}

// tail is the last n lines of the file at path, for an error message.
func tail(path string, n int) string {
	text, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(bytes.TrimSpace(text)) == 0 {
		return "(empty)"
	}
	lines := bytes.SplitAfter(bytes.TrimRight(text, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, nil))
}
