package baton

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestErrorMatchesSentinelOfItsCodeAndKeepsStatus(t *testing.T) {
	err := wrapErr(nil, "Locks.Acquire", "a/b", status.Error(codes.DeadlineExceeded, "timed out waiting"))
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("DEADLINE_EXCEEDED does not match ErrTimeout / context.DeadlineExceeded")
	}
	if errors.Is(err, ErrWouldBlock) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrCanceled) {
		t.Fatal("matches unrelated sentinels")
	}
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("status.Code = %v", status.Code(err))
	}
	if s, ok := status.FromError(err); !ok || s.Message() != "timed out waiting" {
		t.Fatalf("status.FromError = %v %v", s, ok)
	}
	if got := err.Error(); got != "baton: Locks.Acquire a/b: timed out: timed out waiting" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestNarrowSentinelsMatchTheirParents(t *testing.T) {
	err := tag(wrapErr(nil, "Locks.Release", "x", status.Error(codes.FailedPrecondition, "not held")), ErrNotHeld)
	if !errors.Is(err, ErrNotHeld) || !errors.Is(err, ErrFailedPrecondition) {
		t.Fatal("ErrNotHeld tag")
	}
	err = tag(wrapErr(nil, "Locks.Acquire", "x", status.Error(codes.DeadlineExceeded, "")), ErrWouldBlock)
	if !errors.Is(err, ErrWouldBlock) || !errors.Is(err, ErrTimeout) {
		t.Fatal("ErrWouldBlock tag")
	}
	if !errors.Is(ErrSessionClosed, ErrSessionLost) || !errors.Is(ErrSessionClosed, ErrAborted) {
		t.Fatal("ErrSessionClosed parents")
	}
	if errors.Is(ErrTimeout, ErrWouldBlock) {
		t.Fatal("a parent matches its child")
	}
	plain := wrapErr(nil, "Locks.Acquire", "x", status.Error(codes.FailedPrecondition, "kind"))
	if errors.Is(plain, ErrNotHeld) {
		t.Fatal("untagged FAILED_PRECONDITION matches ErrNotHeld")
	}
}

func TestSessionLostCauseTagsCancelledCalls(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(ErrSessionLost)
	err := wrapErr(ctx, "Queues.Get", "q", status.Error(codes.Canceled, "context canceled"))
	if !errors.Is(err, ErrSessionLost) || !errors.Is(err, ErrCanceled) || !errors.Is(err, ErrAborted) {
		t.Fatalf("%v does not match ErrSessionLost", err)
	}
}

func TestLocalErrorsCarryAStatus(t *testing.T) {
	err := localErr("Locks.Release", "x", ErrNotHeld, "already released")
	if status.Code(err) != codes.FailedPrecondition || !errors.Is(err, ErrNotHeld) {
		t.Fatalf("%v", err)
	}
	if status.Code(ErrUnavailable) != codes.Unavailable {
		t.Fatal("sentinel without status")
	}
}

// UNAUTHENTICATED and PERMISSION_DENIED (a batond with principals) match
// their sentinels and no other, and say so in the message.
func TestAuthErrorsMatchTheirSentinels(t *testing.T) {
	for _, tc := range []struct {
		code      codes.Code
		want, not error
		text      string
	}{
		{codes.Unauthenticated, ErrUnauthenticated, ErrPermissionDenied, "unauthenticated"},
		{codes.PermissionDenied, ErrPermissionDenied, ErrUnauthenticated, "permission denied"},
	} {
		err := wrapErr(nil, "Locks.Acquire", "billing/x", status.Error(tc.code, "no role"))
		if !errors.Is(err, tc.want) || errors.Is(err, tc.not) || errors.Is(err, ErrUnavailable) ||
			errors.Is(err, ErrInvalidArgument) || errors.Is(err, ErrFailedPrecondition) {
			t.Errorf("%v: matches the wrong sentinels: %v", tc.code, err)
		}
		if status.Code(err) != tc.code || status.Code(tc.want) != tc.code {
			t.Errorf("%v: status.Code %v, of the sentinel %v", tc.code, status.Code(err), status.Code(tc.want))
		}
		if got, want := err.Error(), "baton: Locks.Acquire billing/x: "+tc.text+": no role"; got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
		if tc.want.Error() != "baton: "+tc.text {
			t.Errorf("sentinel %q", tc.want.Error())
		}
	}
}
