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
// Ownership. What a handle acquires (a lock, permits, queue items in flight,
// a running task) belongs to the client's Session unless the handle is made
// with WithSession, WithLease or WithoutSession. The session is opened on
// first use and kept alive by a goroutine; if the client dies, or loses the
// server for longer than the session's TTL, everything it held is released,
// and Session.Done is closed.
//
// Cancellation. Every call takes a context. Cancelling it (or its deadline
// passing) while a call waits cancels the wait on the server, which rolls
// back a grant that raced with the cancel. When the grant's reply had already
// left (gRPC then drops it on the client), Lock and Acquire recover it with
// their request_id and release it: a cancelled Lock never leaves the lock
// held. A cancelled Get never loses an item: it goes back to the queue, at
// the latest when the lease or session that owns it ends.
//
// Errors. Failed calls return an *Error that matches the sentinel of its
// gRPC code with errors.Is (ErrTimeout, ErrNotFound, ErrFailedPrecondition,
// ErrAborted, ...), narrower sentinels where the package knows more
// (ErrNotHeld, ErrWouldBlock, ErrSessionLost), and keeps its gRPC status for
// status.Code.
package baton
