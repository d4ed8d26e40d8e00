package v2grpc

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/shm"
)

func TestCodeOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want codes.Code
	}{
		{"no error", nil, codes.OK},
		{"input error", &core.InputError{Input: "x", Reason: "bad"}, codes.InvalidArgument},
		{"wrapped input error", fmt.Errorf("model m: %w", &core.InputError{Input: "x", Reason: "bad"}), codes.InvalidArgument},
		{"invalid", core.Invalidf("bad request"), codes.InvalidArgument},
		{"invalid sentinel", core.ErrInvalid, codes.InvalidArgument},
		{"not found", &core.NotFoundError{Model: "m"}, codes.NotFound},
		{"wrapped not found", fmt.Errorf("infer: %w", &core.NotFoundError{Model: "m", Version: "2"}), codes.NotFound},
		{"unavailable", core.Unavailablef("queue full"), codes.Unavailable},
		{"too large", core.TooLargef("too big"), codes.ResourceExhausted},
		{"rate limited", fmt.Errorf("tenant t: %w", core.ErrRateLimited), codes.ResourceExhausted},
		{"cancelled", context.Canceled, codes.Canceled},
		{"deadline", fmt.Errorf("queue: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{"grpc status", status.Error(codes.PermissionDenied, "no"), codes.PermissionDenied},
		{"bad shared memory request", shm.ErrCUDAUnsupported, codes.InvalidArgument},
		{"shared memory region exists", fmt.Errorf("register: %w", shm.ErrExists), codes.AlreadyExists},
		{"no such shared memory region", shm.CUDARegionNotFound("r"), codes.NotFound},
		{"plain error", errors.New("backend exploded"), codes.Internal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := codeOf(tc.err); got != tc.want {
				t.Errorf("codeOf(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestStatusErrorKeepsTheMessage(t *testing.T) {
	s := New(&fakeCore{}, Options{})
	err := s.statusError(fmt.Errorf("infer: %w", &core.NotFoundError{Model: "m"}))
	st := status.Convert(err)
	if st.Code() != codes.NotFound || st.Message() != "infer: Request for unknown model: 'm' is not found" {
		t.Errorf("statusError = %v %q", st.Code(), st.Message())
	}
}
