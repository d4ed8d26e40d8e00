package threadprio

import (
	"os/exec"
	"runtime"
	"slices"
	"syscall"
	"testing"
)

func background(t *testing.T) {
	t.Helper()
	if err := Background(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Reset(); err != nil {
			t.Error(err)
		}
	})
}

func TestBackgroundMovesEveryThreadAndForegroundOnlyTheCaller(t *testing.T) {
	background(t)
	if front, back, _ := Threads(); len(front) != 0 || len(back) == 0 {
		t.Errorf("after Background: %d threads in front, %d behind; want none and all", len(front), len(back))
	}
	done := make(chan int)
	release := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		back, err := Foreground()
		if err != nil {
			t.Error(err)
		}
		defer back()
		done <- syscall.Gettid()
		<-release
		done <- 0
	}()
	fg := <-done
	defer func() { close(release); <-done }() // the thread is back before Reset
	if front, _, _ := Threads(); !slices.Equal(front, []int{fg}) {
		t.Errorf("threads in front %v, want only the one that called Foreground (%d)", front, fg)
	}
}

func TestDoHandsItsClassToChildProcessesAndRestoresTheThread(t *testing.T) {
	background(t)
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

// A thread someone put in another class keeps it: here SCHED_IDLE, which any process may
// enter (leaving it needs privileges, so the thread is left to exit).
func TestBackgroundLeavesOtherClassesAlone(t *testing.T) {
	tid := make(chan int)
	release := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the idle thread exits with the goroutine
		if err := setPolicy(0, schedIdle); err != nil {
			t.Error(err)
		}
		tid <- syscall.Gettid()
		<-release
		if _, err := Foreground(); err != nil {
			t.Error(err)
		}
		if p, _ := policy(0); p != schedIdle {
			t.Errorf("Foreground moved a SCHED_IDLE thread to policy %d", p)
		}
		tid <- 0
	}()
	idle := <-tid
	background(t)
	if p, _ := policy(idle); p != schedIdle {
		t.Errorf("Background moved a SCHED_IDLE thread to policy %d", p)
	}
	if front, back, _ := Threads(); slices.Contains(front, idle) || slices.Contains(back, idle) {
		t.Errorf("the SCHED_IDLE thread %d is listed in front or behind", idle)
	}
	close(release)
	<-tid
}
