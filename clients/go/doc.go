// Package baton is the Go client of Baton, a coordination server that shares
// asyncio's primitives between processes over gRPC: locks with fencing
// tokens, semaphores, events, conditions, barriers, queues with
// acknowledgements, futures, tasks and timers.
//
// Connect once per process, then make handles on named resources:
//
//	c, err := baton.Dial(ctx, "127.0.0.1:7411")
//	if err != nil { ... }
//	defer c.Close()
//
//	held, err := c.Mutex("billing/nightly-migration").Lock(ctx)
//	if err != nil { ... }
//	defer held.Unlock(ctx)
//	migrate(held.Fence())
//
// Transport. By default the client carries its session and every operation
// on one session stream (baton.v1.Stream/Connect), many operations per
// message; WithTransport(Unary) makes one unary call per operation instead.
// A broken stream is re-opened with the same session; waits that carry a
// request_id (Lock, Acquire, Get, Take) are sent again with what is left of
// their deadline, other operations in flight end with ErrUnavailable.
//
// Ownership. What a handle acquires (a lock, permits, queue items in flight,
// a running task) belongs to the client's Session unless the handle is made
// with WithSession, WithLease or WithoutSession. The session is opened on
// first use (DefaultSessionTTL) and kept alive by the stream (or, on the
// unary transport, by a goroutine); if the client dies, or loses the server
// for longer than the session's TTL, everything it held is released.
// Holdings say so: HeldLock.Done and Permits.Done are closed (Err says why),
// as is Session.Done; OnSessionLost is told, and the client opens a new
// session for what follows.
//
// Cancellation. Every call takes a context. Cancelling it (or its deadline
// passing) while a call waits cancels the wait on the server. A grant that
// crossed the cancel is rolled back by the client (the lock or permits
// released, the items Nacked, the task given back), recovered with the
// call's request_id when its answer was lost: no lock, permit, item or task
// is ever left stuck by a cancel.
//
// Errors. Failed calls return an *Error that matches the sentinel of its
// gRPC code with errors.Is (ErrTimeout, ErrNotFound, ErrFailedPrecondition,
// ErrAborted, ...), narrower sentinels where the package knows more
// (ErrNotHeld, ErrWouldBlock, ErrSessionLost), and keeps its gRPC status for
// status.Code.
package baton
