package main

import (
	"context"
	"fmt"
	"time"

	baton "github.com/baton/baton/clients/go"
)

// lock NAME [--ttl D] [--try] [-- CMD ARGS...]
func cmdLock(e *env, args []string) error {
	fs := e.newFlags("lock")
	ttl := fs.Duration("ttl", 0, "lease: released this long after the grant unless refreshed")
	try := fs.Bool("try", false, "do not wait: fail (exit 3) if the lock is held")
	requestID := fs.String("request-id", "", "idempotency key")
	pos, cmd, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := need(fs, pos, 1, 1, "NAME [--ttl D] [--try] [-- CMD ARGS...]"); err != nil {
		return err
	}
	if cmd != nil && len(cmd) == 0 {
		return usageErr("usage: baton lock NAME -- CMD [ARGS...]: no command after --")
	}
	name := pos[0]
	opts, err := e.ownerOpts(*ttl, cmd == nil)
	if err != nil {
		return err
	}
	if *requestID != "" {
		opts = append(opts, baton.WithRequestID(*requestID))
	}
	m := e.client.Mutex(name, opts...)
	ctx, cancel := e.waitCtx()
	var held *baton.HeldLock
	if *try {
		held, err = m.TryLock(ctx)
	} else {
		held, err = m.Lock(ctx)
	}
	cancel()
	if err != nil {
		return err
	}
	if cmd == nil {
		var sid uint64
		if s := held.Session(); s != nil {
			sid = s.ID()
		}
		e.print(map[string]any{"name": name, "token": u64(held.Fence()), "session_id": u64(sid),
			"expires_in": jsonDur(held.ExpiresIn()), "outcome": held.Outcome().String()},
			"%d\n", held.Fence())
		return nil
	}
	h := holding{
		what:    "lock " + name,
		env:     []string{envVar("BATON_FENCE", held.Fence()), envVar("BATON_LOCK", name), envVar("BATON_ADDR", e.g.addr)},
		release: held.Unlock,
	}
	if s := held.Session(); s != nil {
		h.env = append(h.env, envVar("BATON_SESSION", s.ID()))
		h.lost, h.lostErr = s.Done(), s.Err
	}
	if *ttl > 0 {
		h.refreshEvery = *ttl / 3
		h.refresh = func(ctx context.Context) error { _, err := held.Refresh(ctx, *ttl); return err }
	}
	return e.runWhileHolding(h, cmd)
}

// unlock NAME --token T [--session ID]
func cmdUnlock(e *env, args []string) error {
	fs := e.newFlags("unlock")
	token := fs.Uint64("token", 0, "the lock's token, as printed by 'baton lock NAME'")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := need(fs, pos, 1, 1, "NAME --token T [--session ID]"); err != nil {
		return err
	}
	if *token == 0 {
		return usageErr("usage: baton unlock NAME --token T: --token is required")
	}
	c, err := e.dial()
	if err != nil {
		return err
	}
	ctx, cancel := e.callCtx()
	defer cancel()
	if err := c.Mutex(pos[0]).Held(*token, e.g.session).Unlock(ctx); err != nil {
		return err
	}
	e.print(map[string]any{"name": pos[0], "released": true}, "")
	return nil
}

// refresh NAME --token T --ttl D [--session ID]: a lock or a semaphore holding.
func cmdRefresh(e *env, args []string) error {
	fs := e.newFlags("refresh")
	token := fs.Uint64("token", 0, "the holding's token")
	ttl := fs.Duration("ttl", 0, "new lease, from now")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := need(fs, pos, 1, 1, "NAME --token T --ttl D [--session ID]"); err != nil {
		return err
	}
	if *token == 0 || *ttl <= 0 {
		return usageErr("usage: baton refresh NAME --token T --ttl D: --token and --ttl are required")
	}
	c, err := e.dial()
	if err != nil {
		return err
	}
	ctx, cancel := e.callCtx()
	defer cancel()
	info, err := c.Describe(ctx, pos[0])
	if err != nil {
		return err
	}
	var left time.Duration
	switch info.GetKind() {
	case baton.KindLock:
		left, err = c.Mutex(pos[0]).Held(*token, e.g.session).Refresh(ctx, *ttl)
	case baton.KindSemaphore:
		left, err = c.Semaphore(pos[0], 0).Held(*token, e.g.session).Refresh(ctx, *ttl)
	default:
		return &exitError{exitConflict, fmt.Sprintf("%s is a %s, not a lock or semaphore", pos[0], kindName(info.GetKind()))}
	}
	if err != nil {
		return err
	}
	e.print(map[string]any{"name": pos[0], "expires_in": jsonDur(left)}, "expires in %v\n", left.Round(time.Millisecond))
	return nil
}

// sem acquire|release|delete ...
func cmdSem(e *env, args []string) error {
	if len(args) == 0 {
		return usageErr("usage: baton sem acquire|release|delete NAME ...")
	}
	switch args[0] {
	case "acquire":
		return semAcquire(e, args[1:])
	case "release":
		return semRelease(e, args[1:])
	case "delete":
		return semDelete(e, args[1:])
	}
	return usageErr("usage: baton sem acquire|release|delete NAME ...: unknown subcommand %q", args[0])
}

func semAcquire(e *env, args []string) error {
	fs := e.newFlags("sem acquire")
	capacity := fs.Int64("capacity", 0, "total permits (declares the semaphore; must match once declared)")
	count := fs.Int64("count", 1, "permits to take")
	ttl := fs.Duration("ttl", 0, "lease")
	try := fs.Bool("try", false, "do not wait: fail (exit 3) if the permits are not free")
	pos, cmd, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := need(fs, pos, 1, 1, "NAME --capacity N [--count K] [--ttl D] [--try] [-- CMD ARGS...]"); err != nil {
		return err
	}
	if cmd != nil && len(cmd) == 0 {
		return usageErr("usage: baton sem acquire NAME -- CMD [ARGS...]: no command after --")
	}
	name := pos[0]
	opts, err := e.ownerOpts(*ttl, cmd == nil)
	if err != nil {
		return err
	}
	s := e.client.Semaphore(name, *capacity, opts...)
	ctx, cancel := e.waitCtx()
	var p *baton.Permits
	if *try {
		p, err = s.TryAcquire(ctx, *count)
	} else {
		p, err = s.Acquire(ctx, *count)
	}
	cancel()
	if err != nil {
		return err
	}
	if cmd == nil {
		e.print(map[string]any{"name": name, "token": u64(p.Token()), "count": p.Count(), "available": p.Available(),
			"expires_in": jsonDur(p.ExpiresIn()), "outcome": p.Outcome().String()},
			"%d\n", p.Token())
		return nil
	}
	h := holding{
		what: "semaphore " + name,
		env: []string{envVar("BATON_FENCE", p.Token()), envVar("BATON_SEMAPHORE", name),
			envVar("BATON_PERMITS", p.Count()), envVar("BATON_ADDR", e.g.addr)},
		release: p.Release,
	}
	if sess := p.Session(); sess != nil {
		h.env = append(h.env, envVar("BATON_SESSION", sess.ID()))
		h.lost, h.lostErr = sess.Done(), sess.Err
	}
	if *ttl > 0 {
		h.refreshEvery = *ttl / 3
		h.refresh = func(ctx context.Context) error { _, err := p.Refresh(ctx, *ttl); return err }
	}
	return e.runWhileHolding(h, cmd)
}

func semRelease(e *env, args []string) error {
	fs := e.newFlags("sem release")
	token := fs.Uint64("token", 0, "the holding's token, as printed by 'baton sem acquire'")
	count := fs.Int64("count", 0, "permits to return (default: all)")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := need(fs, pos, 1, 1, "NAME --token T [--count K] [--session ID]"); err != nil {
		return err
	}
	if *token == 0 {
		return usageErr("usage: baton sem release NAME --token T: --token is required")
	}
	c, err := e.dial()
	if err != nil {
		return err
	}
	ctx, cancel := e.callCtx()
	defer cancel()
	p := c.Semaphore(pos[0], 0).Held(*token, e.g.session)
	var remaining int64
	if *count > 0 {
		remaining, err = p.ReleaseN(ctx, *count)
	} else {
		err = p.Release(ctx)
	}
	if err != nil {
		return err
	}
	e.print(map[string]any{"name": pos[0], "remaining": remaining}, "remaining %d\n", remaining)
	return nil
}

// semDelete ends a semaphore's declaration (exit 4 if there is none, 5 while
// permits are held).
func semDelete(e *env, args []string) error {
	fs := e.newFlags("sem delete")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := need(fs, pos, 1, 1, "NAME"); err != nil {
		return err
	}
	c, err := e.dial()
	if err != nil {
		return err
	}
	ctx, cancel := e.callCtx()
	defer cancel()
	ok, err := c.Semaphore(pos[0], 0).Delete(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return &exitError{exitNotFound, fmt.Sprintf("no semaphore %s", pos[0])}
	}
	e.print(map[string]any{"name": pos[0], "deleted": true}, "")
	return nil
}
