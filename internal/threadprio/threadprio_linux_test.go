package threadprio

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"testing"
)

func threadPolicies(t *testing.T) map[int]int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]int{}
	for _, e := range ents {
		tid, _ := strconv.Atoi(e.Name())
		if p, err := policy(tid); err == nil {
			got[tid] = p
		}
	}
	return got
}

func TestBackgroundMovesEveryThreadAndForegroundOnlyTheCaller(t *testing.T) {
	if err := Background(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restoreAll(t) })
	for tid, p := range threadPolicies(t) {
		if p != schedBatch {
			t.Errorf("thread %d has policy %d after Background, want SCHED_BATCH (%d)", tid, p, schedBatch)
		}
	}
	done := make(chan int)
	release := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := Foreground(); err != nil {
			t.Error(err)
		}
		done <- syscall.Gettid()
		<-release
	}()
	fg := <-done
	defer close(release)
	for tid, p := range threadPolicies(t) {
		want := schedBatch
		if tid == fg {
			want = schedOther
		}
		if p != want {
			t.Errorf("thread %d has policy %d, want %d (foreground thread %d)", tid, p, want, fg)
		}
	}
}

func TestDoHandsItsClassToChildProcessesAndRestoresTheThread(t *testing.T) {
	if err := Background(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restoreAll(t) })
	start := func() *exec.Cmd {
		cmd := exec.Command("sleep", "10")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() }) //nolint:errcheck // best effort
		return cmd
	}
	var inside *exec.Cmd
	runtime.LockOSThread() // to look at the same thread before and after Do
	defer runtime.UnlockOSThread()
	err := Do(func() error {
		if p, _ := policy(0); p != schedOther {
			t.Errorf("inside Do the thread has policy %d, want SCHED_OTHER", p)
		}
		inside = start()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := policy(0); p != schedBatch {
		t.Errorf("after Do the thread has policy %d, want SCHED_BATCH back", p)
	}
	outside := start()
	if p, err := policy(inside.Process.Pid); err != nil || p != schedOther {
		t.Errorf("child started in Do: policy %d (%v), want SCHED_OTHER", p, err)
	}
	if p, err := policy(outside.Process.Pid); err != nil || p != schedBatch {
		t.Errorf("child started outside Do: policy %d (%v), want SCHED_BATCH", p, err)
	}
}

// restoreAll puts the test binary's threads back in SCHED_OTHER for the next test.
func restoreAll(t *testing.T) {
	for tid := range threadPolicies(t) {
		setPolicy(tid, schedOther) //nolint:errcheck // best effort
	}
}
