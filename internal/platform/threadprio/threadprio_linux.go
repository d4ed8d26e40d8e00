package threadprio

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"
)

// Linux scheduling policies (sched.h).
const (
	schedOther = 0
	schedBatch = 3
	schedIdle  = 5
)

// setPolicy sets a thread's policy (tid 0: the calling thread) at static priority 0,
// the only one the normal classes have.
func setPolicy(tid, policy int) error {
	var param struct{ priority int32 }
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, uintptr(tid), uintptr(policy), uintptr(unsafe.Pointer(&param)))
	if e != 0 {
		return e
	}
	return nil
}

func policy(tid int) (int, error) {
	p, _, e := syscall.RawSyscall(syscall.SYS_SCHED_GETSCHEDULER, uintptr(tid), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(p), nil
}

// Background moves the process's threads from SCHED_OTHER to SCHED_BATCH; threads an
// administrator put in another class (real-time, idle) keep it. Threads created
// afterwards inherit the class of the thread that creates them, so call it early, before
// any inference thread exists; those made later through Do stay in front.
func Background() error { return move(schedOther, schedBatch) }

// Reset moves the process's threads from SCHED_BATCH back to SCHED_OTHER, undoing
// Background.
func Reset() error { return move(schedBatch, schedOther) }

// move sets every thread of the process that has policy from to policy to.
func move(from, to int) error {
	// Twice: a thread the Go runtime starts while the first pass lists the directory
	// may have been cloned from one not yet moved.
	for range 2 {
		tids, err := threads()
		if err != nil {
			return err
		}
		for _, tid := range tids {
			if p, err := policy(tid); err != nil || p != from {
				continue // exited, or not ours to move
			}
			err = setPolicy(tid, to)
			if err != nil && !errors.Is(err, syscall.ESRCH) { // ESRCH: the thread has exited
				return fmt.Errorf("threadprio: thread %d to policy %d: %w", tid, to, err)
			}
		}
	}
	return nil
}

func threads() ([]int, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, fmt.Errorf("threadprio: list threads: %w", err)
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// Threads lists the process's threads in front (SCHED_OTHER) and behind (SCHED_BATCH);
// threads in other classes are in neither list.
func Threads() (front, back []int, err error) {
	tids, err := threads()
	if err != nil {
		return nil, nil, err
	}
	for _, tid := range tids {
		switch p, err := policy(tid); {
		case err != nil: // exited
		case p == schedOther:
			front = append(front, tid)
		case p == schedBatch:
			back = append(back, tid)
		}
	}
	return front, back, nil
}

// Foreground moves the calling OS thread from SCHED_BATCH to SCHED_OTHER and returns
// the function that moves it back. The caller must have locked its goroutine to the
// thread (runtime.LockOSThread) until it calls back, or the mark lands on a thread Go
// shares with other goroutines. back is never nil.
func Foreground() (back func(), err error) {
	if p, err := policy(0); err != nil || p != schedBatch {
		return func() {}, nil // in front already, or in a class set by someone else
	}
	if err := setPolicy(0, schedOther); err != nil {
		return func() {}, fmt.Errorf("threadprio: thread to SCHED_OTHER: %w", err)
	}
	return func() { setPolicy(0, schedBatch) }, nil //nolint:errcheck // returning to SCHED_BATCH cannot be refused
}

// Do runs f on a thread in SCHED_OTHER and then puts the thread back in its class:
// threads and processes f creates (ONNX Runtime's pool, a child process) inherit
// SCHED_OTHER.
func Do(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	back, _ := Foreground() // on failure f runs in the thread's class
	defer back()
	return f()
}
