package registry

import (
	"errors"
	"fmt"
)

// Errors callers match with errors.Is; every error the store returns wraps one
// of these (or a context error) and names the object it is about.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrInvalid  = errors.New("invalid")
	// ErrUnavailable: the database refused the work for now (locked past the
	// busy timeout, disk or page limit full); nothing was written, a retry may work.
	ErrUnavailable = errors.New("registry store unavailable")
	// ErrSchema: the database's schema is newer than this binary understands.
	ErrSchema = errors.New("registry schema")
)

// objError names the object, wraps the sentinel and keeps the message readable:
// `model "a/b": name must not contain '/'`.
type objError struct {
	obj  string
	msg  string
	kind error
}

func (e *objError) Error() string { return e.obj + ": " + e.msg }
func (e *objError) Unwrap() error { return e.kind }

func errf(kind error, obj, format string, args ...any) error {
	return &objError{obj: obj, msg: fmt.Sprintf(format, args...), kind: kind}
}

func modelObj(name string) string { return fmt.Sprintf("model %q", name) }

func versionObj(model string, v int64) string { return fmt.Sprintf("model %q version %d", model, v) }
