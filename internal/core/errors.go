package core

import (
	"errors"
	"fmt"
	"strconv"
)

// The error vocabulary transports may see. Each transport maps these to its status codes
// in one place (errors.go of the transport).
var (
	// ErrNotFound: unknown model or version (HTTP 404, gRPC NOT_FOUND).
	ErrNotFound = errors.New("not found")
	// ErrInvalid: a malformed or inconsistent request (HTTP 400, gRPC INVALID_ARGUMENT).
	ErrInvalid = errors.New("invalid request")
	// ErrUnavailable: the model or server cannot take the request now: not ready, queue
	// full, shutting down (HTTP 503, gRPC UNAVAILABLE).
	ErrUnavailable = errors.New("unavailable")
	// ErrTooLarge: a body over the size limit (HTTP 413, gRPC RESOURCE_EXHAUSTED).
	ErrTooLarge = errors.New("request too large")
)

// NotFoundError names the unknown model or version. Its text matches Triton's, so clients
// that match the message keep working.
type NotFoundError struct {
	Model   string
	Version string
}

func (e *NotFoundError) Error() string {
	if e.Version == "" {
		return fmt.Sprintf("Request for unknown model: '%s' is not found", e.Model)
	}
	return fmt.Sprintf("Request for unknown model: '%s' version %s is not found", e.Model, e.Version)
}

// Unwrap makes errors.Is(err, ErrNotFound) hold.
func (e *NotFoundError) Unwrap() error { return ErrNotFound }

// InputError is a problem with one named input (or output) of a request.
type InputError struct {
	Input  string
	Reason string
}

func (e *InputError) Error() string { return fmt.Sprintf("input %q: %s", e.Input, e.Reason) }

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *InputError) Unwrap() error { return ErrInvalid }

// Invalidf builds an ErrInvalid error with a message naming what is wrong.
func Invalidf(format string, args ...any) error {
	return &wrapped{msg: fmt.Sprintf(format, args...), kind: ErrInvalid}
}

// Unavailablef builds an ErrUnavailable error.
func Unavailablef(format string, args ...any) error {
	return &wrapped{msg: fmt.Sprintf(format, args...), kind: ErrUnavailable}
}

// TooLargef builds an ErrTooLarge error.
func TooLargef(format string, args ...any) error {
	return &wrapped{msg: fmt.Sprintf(format, args...), kind: ErrTooLarge}
}

// wrapped carries a sentinel kind without putting its text in the message, and
// optionally the cause (so errors.Is still sees context.DeadlineExceeded, say).
type wrapped struct {
	msg   string
	kind  error
	cause error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
