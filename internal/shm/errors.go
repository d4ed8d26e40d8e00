package shm

import (
	"errors"
	"fmt"
)

// Error kinds. Every error this package returns for a client's mistake wraps one of them
// (errors.Is); anything else (a failed mmap, say) is a server fault.
var (
	// ErrNotFound: a status request names no registered region (HTTP 404, gRPC NOT_FOUND).
	ErrNotFound = errors.New("shared memory region not found")
	// ErrExists: a region of that name is already registered (HTTP 400, gRPC ALREADY_EXISTS).
	ErrExists = errors.New("shared memory region already registered")
	// ErrInvalid: a bad key, bounds, parameter or size, or a region that faulted (HTTP 400,
	// gRPC INVALID_ARGUMENT).
	ErrInvalid = errors.New("invalid shared memory request")
)

// kindError carries a kind without putting the kind's text in the message.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func invalidf(format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kind: ErrInvalid}
}

func notFoundf(format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kind: ErrNotFound}
}

func existsf(format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kind: ErrExists}
}
