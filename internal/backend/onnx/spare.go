package onnx

import (
	"fmt"
	"time"
)

// The batch probe's session is kept for the model's first instance rather than
// closed: the instances open right after auto-complete, with the same options, and
// loading a session costs as much as the probe's runs or far more (about 1 s for a
// model with 84 MB of weights, against 100-250 ms of runs). A spare nobody takes
// (the config failed to validate, the options differ) is closed after spareTTL.

// spareTTL is how long a probe's session waits for an Open of the same model.
const spareTTL = 10 * time.Second

// spareSession is a probe's open session, waiting for an Open of its model file
// (the same content: desc) with the same options.
type spareSession struct {
	s     *Session
	desc  *modelDesc
	opts  string // sessionKey of its options
	timer *time.Timer
}

// sessionKey tells options apart; fmt prints Config's keys sorted.
func sessionKey(opts SessionOptions) string { return fmt.Sprintf("%+v", opts) }

// keepSpare keeps s for the next Open of path with opts, closing the spare it
// replaces.
func (r *Runtime) keepSpare(path string, desc *modelDesc, opts SessionOptions, s *Session) {
	sp := &spareSession{s: s, desc: desc, opts: sessionKey(opts)}
	r.mu.Lock()
	old := r.spares[path]
	r.spares[path] = sp
	sp.timer = time.AfterFunc(spareTTL, func() {
		if r.dropSpare(path, sp) {
			s.Close() // unused: a Close error concerns nobody
		}
	})
	r.mu.Unlock()
	if old != nil {
		old.timer.Stop()
		old.s.Close()
	}
}

// dropSpare forgets sp if it is still path's spare, and reports whether it was.
func (r *Runtime) dropSpare(path string, sp *spareSession) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.spares[path] != sp {
		return false
	}
	delete(r.spares, path)
	return true
}

// takeSpare returns the spare session of path when it was opened from the same
// file content (desc) with the same options, else nil. A spare that does not
// match stays until it expires or another probe replaces it.
func (r *Runtime) takeSpare(path string, desc *modelDesc, opts SessionOptions) *Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	sp := r.spares[path]
	if sp == nil || sp.desc != desc || sp.opts != sessionKey(opts) {
		return nil
	}
	sp.timer.Stop()
	delete(r.spares, path)
	return sp.s
}

// stopSpares forgets every spare (Close closes their sessions with the others).
// Called with r.mu held.
func (r *Runtime) stopSpares() {
	for path, sp := range r.spares {
		sp.timer.Stop()
		delete(r.spares, path)
	}
}
