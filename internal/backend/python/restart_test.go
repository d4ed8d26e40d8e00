package python

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// crash makes the instance's process exit in the middle of a request, and checks that
// the request failed with a ProcessError.
func crash(t *testing.T, in *Instance) {
	t.Helper()
	var pe *ProcessError
	if _, err := in.Execute(context.Background(), one(-6), nil); !errors.As(err, &pe) || pe.Status != "exit status 70" {
		t.Fatalf("request that exits the process: err = %v, want a ProcessError with exit status 70", err)
	}
}

// TestBackoffResetsAfterAHealthyRun: crashes spread out in time, each after the process
// served for longer than stableAfter, each restart it at once, so the next request
// waits only for the process to start; the back-off does not grow toward its 10 s cap
// (it did: 100 ms, 200 ms, ... 3.2 s at the seventh crash).
func TestBackoffResetsAfterAHealthyRun(t *testing.T) {
	needPython(t)
	const healthy = 200 * time.Millisecond
	in, _ := openEcho(t, Options{stableAfter: healthy, noNumpy: true})
	for i := range int32(7) {
		time.Sleep(healthy + 50*time.Millisecond) // a healthy run, longer than stableAfter
		if out, err := in.Execute(context.Background(), one(i), nil); err != nil || int32At(t, out, "OUT") != i {
			t.Fatalf("crash %d: the request before it: %v %v", i+1, out, err)
		}
		crash(t, in)
		start := time.Now()
		out, err := in.Execute(context.Background(), one(i), nil)
		took := time.Since(start)
		if err != nil || int32At(t, out, "OUT") != i {
			t.Fatalf("crash %d: the request after it: %v %v", i+1, out, err)
		}
		t.Logf("crash %d: the next request answered after %s", i+1, took.Round(time.Millisecond))
		// It waited for the interpreter to start, nothing more. The back-off left to
		// grow would have reached 1.6 s at the sixth crash and 3.2 s at the seventh.
		if took > 1500*time.Millisecond {
			t.Errorf("crash %d after a healthy run: the next request waited %s for the restart", i+1, took)
		}
	}
}

// TestCrashLoopBacksOff: a process that crashes again soon after its restart is backed
// off; meanwhile requests fail at once with a RestartingError the server answers with
// 503, and the instance is not ready, then it serves again.
func TestCrashLoopBacksOff(t *testing.T) {
	needPython(t)
	in, _ := openEcho(t, Options{noNumpy: true})
	crash(t, in)
	if out, err := in.Execute(context.Background(), one(1), nil); err != nil || int32At(t, out, "OUT") != 1 {
		t.Fatalf("the first restart is immediate, and the next request waits for it: %v %v", out, err)
	}
	crash(t, in) // within stableAfter of the restart: the back-off begins
	start := time.Now()
	_, err := in.Execute(context.Background(), one(2), nil)
	var re *RestartingError
	if !errors.As(err, &re) || re.Starting() || !re.Unavailable() || !strings.Contains(err.Error(), "the next start is in") {
		t.Fatalf("request during the back-off: err = %v, want a RestartingError naming the next start", err)
	}
	if took := time.Since(start); took >= minBackoff {
		t.Errorf("the request during the back-off took %s to fail", took)
	}
	if err := in.Ready(); !errors.As(err, &re) {
		t.Errorf("Ready during the back-off = %v, want a RestartingError", err)
	}
	waitFor(t, "the instance to restart", func() bool { return in.Ready() == nil })
	if out, err := in.Execute(context.Background(), one(3), nil); err != nil || int32At(t, out, "OUT") != 3 {
		t.Fatalf("after the back-off: %v %v", out, err)
	}
}

// TestNotReadyWhileRestarting: from the crash until the new process has run
// initialize(), Ready reports the instance down, as a local cause with a start under
// way; a request that arrives meanwhile waits for the start and succeeds.
func TestNotReadyWhileRestarting(t *testing.T) {
	needPython(t)
	in, marker := openEcho(t, Options{noNumpy: true})
	if err := in.Ready(); err != nil {
		t.Fatalf("Ready before the crash = %v", err)
	}
	if err := os.WriteFile(marker+".holdinit", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pid := in.pid()
	crash(t, in)
	err := in.Ready()
	var re *RestartingError
	if !errors.As(err, &re) || !re.Starting() || !re.Local() || re.PID != pid {
		t.Fatalf("Ready while the process restarts = %v, want a RestartingError for pid %d with a start under way", err, pid)
	}
	for _, want := range []string{"python model 'echo'", "exit status 70", "a new process is starting"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Ready's error %q does not mention %q", err, want)
		}
	}
	type reply struct {
		out int32
		err error
	}
	done := make(chan reply, 1)
	go func() {
		out, err := in.Execute(context.Background(), one(4), nil)
		if err != nil {
			done <- reply{err: err}
			return
		}
		done <- reply{out: int32At(t, out, "OUT")}
	}()
	time.Sleep(100 * time.Millisecond) // initialize() is held: the request waits
	if err := in.Ready(); err == nil {
		t.Error("Ready = nil while initialize() is still held")
	}
	select {
	case r := <-done:
		t.Fatalf("request during the restart returned before the process was up: %d %v", r.out, r.err)
	default:
	}
	if err := os.Remove(marker + ".holdinit"); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.err != nil || r.out != 4 {
		t.Errorf("request that waited for the restart: %d %v", r.out, r.err)
	}
	if err := in.Ready(); err != nil {
		t.Errorf("Ready after the restart = %v", err)
	}
}
