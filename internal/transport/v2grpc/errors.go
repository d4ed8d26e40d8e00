package v2grpc

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/shm"
)

// codeOf is the one place that maps an error to a gRPC status code. Core's vocabulary
// comes first; context errors keep gRPC's own meaning; an error that already carries a
// status (from grpc itself) keeps its code; anything else is a server fault.
func codeOf(err error) codes.Code {
	var in *core.InputError
	switch {
	case err == nil:
		return codes.OK
	case errors.As(err, &in), errors.Is(err, core.ErrInvalid), errors.Is(err, shm.ErrInvalid):
		return codes.InvalidArgument
	case errors.Is(err, shm.ErrExists):
		return codes.AlreadyExists
	case errors.Is(err, core.ErrNotFound), errors.Is(err, shm.ErrNotFound):
		return codes.NotFound
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, core.ErrUnavailable):
		return codes.Unavailable
	case errors.Is(err, core.ErrTooLarge), errors.Is(err, core.ErrRateLimited):
		return codes.ResourceExhausted
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	return codes.Internal
}

// statusError turns err into the status error a handler returns. The message is the
// error's text unchanged, so core's wording (Triton's "Request for unknown model: ...")
// reaches clients that match on it. Server faults are logged: they are lost work.
func (s *Server) statusError(err error) error {
	return s.statusErrorContext(context.Background(), err)
}

// statusErrorContext is statusError logging with the request's context, so the line
// carries the request's ids (package reqlog).
func (s *Server) statusErrorContext(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	code := codeOf(err)
	if code == codes.Internal || code == codes.Unknown {
		s.log.ErrorContext(ctx, "grpc request failed", "err", err)
	}
	if st, ok := status.FromError(err); ok && st.Code() == code {
		return st.Err()
	}
	return status.Error(code, err.Error())
}
