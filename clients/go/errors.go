package baton

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors. Every error returned by this package that came from the
// server (or from gRPC on the way to it) is an *Error, which matches the
// sentinel of its gRPC code with errors.Is and keeps the status for
// status.Code and status.FromError:
//
//	held, err := m.Lock(ctx)
//	if errors.Is(err, baton.ErrTimeout) { ... }      // or status.Code(err) == codes.DeadlineExceeded
//
// The code sentinels, one per gRPC code the server uses:
var (
	// ErrTimeout: not granted in time (the ctx deadline or a zero timeout).
	// Also matches context.DeadlineExceeded.
	ErrTimeout = &sentinel{code: codes.DeadlineExceeded, msg: "timed out"}
	// ErrCanceled: the call was cancelled (its ctx was cancelled). Also matches
	// context.Canceled.
	ErrCanceled = &sentinel{code: codes.Canceled, msg: "cancelled"}
	// ErrNotFound: unknown session, task, or a resource that does not exist.
	ErrNotFound = &sentinel{code: codes.NotFound, msg: "not found"}
	// ErrFailedPrecondition: releasing what is not held, a name used as
	// another kind, a capacity or parties that differ from the declared ones,
	// a future already done.
	ErrFailedPrecondition = &sentinel{code: codes.FailedPrecondition, msg: "failed precondition"}
	// ErrAborted: the owning session ended while waiting, the barrier is
	// broken, or the queue was deleted.
	ErrAborted = &sentinel{code: codes.Aborted, msg: "aborted"}
	// ErrInvalidArgument: a bad name, TTL, timeout, count...
	ErrInvalidArgument = &sentinel{code: codes.InvalidArgument, msg: "invalid argument"}
	// ErrResourceExhausted: a server limit, or a full queue on TryPut.
	ErrResourceExhausted = &sentinel{code: codes.ResourceExhausted, msg: "resource exhausted"}
	// ErrUnavailable: the server cannot be reached or is shutting down.
	ErrUnavailable = &sentinel{code: codes.Unavailable, msg: "unavailable"}
	// ErrUnauthenticated: a batond with principals (--auth_policy) does not
	// know who calls: no token (WithToken) and no client certificate, a
	// token not in its tokens file, or a malformed authorization header.
	ErrUnauthenticated = &sentinel{code: codes.Unauthenticated, msg: "unauthenticated"}
	// ErrPermissionDenied: the caller's principal has no role granting the
	// access the call needs (read, write or admin) on the name, or uses a
	// session another principal owns; a client certificate whose common
	// name has no role.
	ErrPermissionDenied = &sentinel{code: codes.PermissionDenied, msg: "permission denied"}
)

// Sentinels with a narrower meaning. Each also matches the code sentinel in
// its description.
var (
	// ErrNotHeld: the lock, permits or in-flight item is not (or no longer)
	// held by this owner. Matches ErrFailedPrecondition.
	ErrNotHeld = &sentinel{code: codes.FailedPrecondition, msg: "not held", parent: ErrFailedPrecondition}
	// ErrWouldBlock: a Try call (TryLock, TryAcquire, TryGet, TryPut, TryTake,
	// TryAwait) found that it would have to wait. Matches ErrTimeout, except
	// for TryPut on a full queue, which matches ErrResourceExhausted.
	ErrWouldBlock = &sentinel{code: codes.DeadlineExceeded, msg: "would block", parent: ErrTimeout}
	// ErrSessionLost: the session that owns (or would own) the holding ended:
	// closed, expired without keep-alives, or unknown to the server. Whatever
	// it held is released. Matches ErrAborted.
	ErrSessionLost = &sentinel{code: codes.Aborted, msg: "session lost", parent: ErrAborted}
	// ErrClientClosed: Close was called on the client.
	ErrClientClosed = &sentinel{code: codes.Canceled, msg: "client closed", parent: ErrCanceled}
)

// Outcomes of futures and tasks that are data, not call failures: Await
// returns them as errors so that the value and error read like a Go call.
var (
	// ErrFutureCancelled: the awaited future was cancelled (Future.Cancel).
	ErrFutureCancelled = errors.New("baton: future cancelled")
	// ErrTaskCancelled: the awaited task was cancelled (Task.Cancel).
	ErrTaskCancelled = errors.New("baton: task cancelled")
)

type sentinel struct {
	code   codes.Code
	msg    string
	parent *sentinel
}

func (s *sentinel) Error() string { return "baton: " + s.msg }

// GRPCStatus lets status.Code work on a sentinel too.
func (s *sentinel) GRPCStatus() *status.Status { return status.New(s.code, s.msg) }

// Is makes a narrow sentinel match its parent.
func (s *sentinel) Is(target error) bool {
	for p := s.parent; p != nil; p = p.parent {
		if target == p {
			return true
		}
	}
	return false
}

// Error is a failed call: which operation, on which resource, and the gRPC
// status it ended with.
type Error struct {
	// Op is the RPC, e.g. "Locks.Acquire".
	Op string
	// Name is the resource name or task id ("" if none).
	Name string

	st    *status.Status
	also  *sentinel // a narrower sentinel this error matches, if any
	cause error     // the error as gRPC returned it
}

// Code is the gRPC status code.
func (e *Error) Code() codes.Code { return e.st.Code() }

// Message is the server's message, meant for a person.
func (e *Error) Message() string { return e.st.Message() }

func (e *Error) Error() string {
	what := e.Op
	if e.Name != "" {
		what += " " + e.Name
	}
	msg := e.st.Message()
	if e.also != nil && msg == "" {
		msg = e.also.msg
	}
	return fmt.Sprintf("baton: %s: %s: %s", what, codeText(e.st.Code()), msg)
}

// GRPCStatus makes status.Code(err) and status.FromError(err) work.
func (e *Error) GRPCStatus() *status.Status { return e.st }

// Unwrap returns the error as gRPC returned it.
func (e *Error) Unwrap() error { return e.cause }

// Is matches the sentinel of the error's code, the narrower sentinel it was
// tagged with, and context.Canceled / context.DeadlineExceeded.
func (e *Error) Is(target error) bool {
	if e.also != nil && (target == e.also || e.also.Is(target)) {
		return true
	}
	switch t := target.(type) {
	case *sentinel:
		return t.parent == nil && t.code == e.st.Code()
	}
	switch target {
	case context.Canceled:
		return e.st.Code() == codes.Canceled
	case context.DeadlineExceeded:
		return e.st.Code() == codes.DeadlineExceeded
	}
	return false
}

func codeText(c codes.Code) string {
	switch c {
	case codes.DeadlineExceeded:
		return "timed out"
	case codes.Canceled:
		return "cancelled"
	case codes.NotFound:
		return "not found"
	case codes.FailedPrecondition:
		return "failed precondition"
	case codes.Aborted:
		return "aborted"
	case codes.InvalidArgument:
		return "invalid argument"
	case codes.ResourceExhausted:
		return "resource exhausted"
	case codes.Unavailable:
		return "unavailable"
	case codes.Unauthenticated:
		return "unauthenticated"
	case codes.PermissionDenied:
		return "permission denied"
	}
	return c.String()
}

// RemoteError is the error a future was completed with (Future.SetError) or
// a task failed with (Job.Fail, or a worker loop handler's error). It is
// application data: Code and Message are whatever the setter chose.
type RemoteError struct {
	Code    int32
	Message string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("baton: remote error %d: %s", e.Code, e.Message)
}

// wrapErr turns an error from a gRPC call into an *Error. ctx is the call's
// context: when it was cancelled because the owning session was lost, the
// error also matches ErrSessionLost.
func wrapErr(ctx context.Context, op, name string, err error) error {
	if err == nil {
		return nil
	}
	var be *Error
	if errors.As(err, &be) {
		return err
	}
	var s *sentinel
	if errors.As(err, &s) {
		return &Error{Op: op, Name: name, st: status.New(s.code, ""), also: s, cause: err}
	}
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err)
	}
	e := &Error{Op: op, Name: name, st: st, cause: err}
	if ctx != nil {
		if cause := context.Cause(ctx); cause != nil {
			var cs *sentinel
			if errors.As(cause, &cs) && (st.Code() == codes.Canceled || st.Code() == codes.Aborted) {
				e.also = cs
			}
		}
	}
	return e
}

// localErr is an *Error produced without a call (e.g. unlocking a lock this
// handle already released).
func localErr(op, name string, s *sentinel, msg string) error {
	return &Error{Op: op, Name: name, st: status.New(s.code, msg), also: s, cause: s}
}

// tag marks err (an *Error) as also matching s.
func tag(err error, s *sentinel) error {
	var be *Error
	if errors.As(err, &be) && be.also == nil {
		be.also = s
	}
	return err
}
