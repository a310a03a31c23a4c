package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	baton "github.com/baton/baton/clients/go"
	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
)

const childExits = `

Exit codes with a command: CMD's status when it ran (128+N if killed by signal N);
baton's own outcomes are 64 + the usual code: 67 not taken in time (--timeout, --try;
or --conflict-exit-code), 69 lost while CMD ran or the name is another kind, 70 server
unreachable, 68 not found (--session), 66 bad usage, 65 other errors; 64 CMD itself
exited 64-71; 126 CMD is not executable, 127 CMD was not found; 130 interrupted while
waiting. Without a command: 0 taken; 3 not taken in time (or --conflict-exit-code);
4 no such --session; 5 the name is another kind; 2 bad usage; 6 server unreachable;
1 other errors ('baton help exit-codes').`

// conflictFlag adds --conflict-exit-code (flock's -E) to a command that
// takes a holding, and returns a function that applies it to e.
func conflictFlag(e *env, cmd *cobra.Command) func() error {
	code := cmd.Flags().IntP("conflict-exit-code", "E", 0,
		"exit with this code instead of 3 (67 with a command) when not taken in time (--try, --timeout), as flock -E")
	return func() error {
		if !cmd.Flags().Changed("conflict-exit-code") {
			return nil
		}
		if *code < 0 || *code > 255 {
			return usageErr("--conflict-exit-code must be 0..255, not %d", *code)
		}
		e.conflictCode = *code
		return nil
	}
}

// childArgs checks the command after "--": none (nil), or a non-empty one.
func childArgs(cmd *cobra.Command, args []string, min, max int) (pos, child []string, err error) {
	pos, child = split(cmd, args)
	if err := need(cmd, pos, min, max); err != nil {
		return nil, nil, err
	}
	if child != nil && len(child) == 0 {
		return nil, nil, usageErr("no command after --")
	}
	return pos, child, nil
}

func lockCmd(e *env) *cobra.Command {
	var ttl time.Duration
	var try bool
	var requestID string
	cmd := &cobra.Command{
		Use:   "lock NAME [--ttl D] [--try] [-- CMD [ARGS...]]",
		Short: "Run a command while holding a lock, or take a lock and print its token",
		Long: `With a command after "--", baton takes the lock NAME, runs CMD while holding it and
releases it when CMD exits, like flock. CMD gets BATON_FENCE (the fencing token, for
the storage to check), BATON_LOCK, BATON_SESSION and BATON_ADDR in its environment.
SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are forwarded to CMD (Ctrl-C
from a terminal already reaches CMD and is not sent twice). The lock is owned by a
session baton opens (--session-ttl) or by --session ID; with --ttl it is also a lease,
refreshed every ttl/3 while CMD runs. If the lock is lost while CMD runs (its session
ended), baton sends CMD SIGTERM, SIGKILL 10s later, and exits 69. --timeout bounds the
wait for the lock only.

Without a command, baton takes the lock and prints its token; the lock stays held
after baton exits, owned by a lease (--ttl) or by --session ID (see 'session open').
Release it with 'baton unlock NAME --token T', extend it with 'baton refresh'.

--json prints the baton.v1.AcquireLockResponse (Locks/Acquire), without a command.` + childExits,
		Example: `  baton lock billing/migrate -- ./migrate.sh            # $BATON_FENCE is set for migrate.sh
  baton lock cron/nightly --try -E 0 -- ./nightly.sh     # skip quietly if another run holds it
  baton --timeout 30s lock db/primary -- pg_dump db > dump.sql
  TOKEN=$(baton lock reports/monthly --ttl 10m)          # a lease that outlives this shell
  baton unlock reports/monthly --token "$TOKEN"`,
		Annotations:       map[string]string{annotRunsChild: "yes"},
		ValidArgsFunction: e.completeNames(baton.KindLock),
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "lease: released this long after the grant unless refreshed")
	cmd.Flags().BoolVar(&try, "try", false, "do not wait: fail (exit 3, or 67 with a command) if the lock is held")
	cmd.Flags().StringVar(&requestID, "request-id", "", "idempotency key: a retry with the same key gets the same grant")
	applyConflict := conflictFlag(e, cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		pos, child, err := childArgs(cmd, args, 1, 1)
		if err != nil {
			return err
		}
		if err := applyConflict(); err != nil {
			return err
		}
		name := pos[0]
		opts, err := e.ownerOpts(ttl, child == nil)
		if err != nil {
			return err
		}
		if requestID != "" {
			opts = append(opts, baton.WithRequestID(requestID))
		}
		m := e.client.Mutex(name, opts...)
		ctx, cancel := e.waitCtx()
		var held *baton.HeldLock
		if try {
			held, err = m.TryLock(ctx)
		} else {
			held, err = m.Lock(ctx)
		}
		cancel()
		if err != nil {
			return err
		}
		if child == nil {
			e.reply(batonv1.Locks_Acquire_FullMethodName, "%d\n", held.Fence())
			return nil
		}
		h := holding{
			what:    "lock " + name,
			env:     append([]string{envVar("BATON_FENCE", held.Fence()), envVar("BATON_LOCK", name)}, e.g.serverEnv()...),
			release: held.Unlock,
		}
		if s := held.Session(); s != nil {
			h.env = append(h.env, envVar("BATON_SESSION", s.ID()))
			h.lost, h.lostErr = s.Done(), s.Err
		}
		if ttl > 0 {
			h.refreshEvery = ttl / 3
			h.refresh = func(ctx context.Context) error { _, err := held.Refresh(ctx, ttl); return err }
		}
		return e.runWhileHolding(h, child)
	}
	return cmd
}

func unlockCmd(e *env) *cobra.Command {
	var token uint64
	cmd := leaf("unlock NAME --token T [--session ID]",
		"Release a lock taken by 'baton lock NAME' without a command",
		`Releases the lock NAME held with the fencing token T, as printed by 'baton lock NAME
--ttl D' (give --session ID too if a session owns it). The next waiter, if any, gets
the lock.

--json prints the baton.v1.ReleaseLockResponse (Locks/Release).`+
			exits("0 released", "5 not held with this token (released already, lost, or another owner)"),
		`  TOKEN=$(baton lock reports/monthly --ttl 10m)
  baton unlock reports/monthly --token "$TOKEN"`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			if token == 0 {
				return usageErr("--token is required")
			}
			c, err := e.dial()
			if err != nil {
				return err
			}
			ctx, cancel := e.callCtx()
			defer cancel()
			if err := c.Mutex(pos[0]).Held(token, e.g.session).Unlock(ctx); err != nil {
				return err
			}
			e.reply(batonv1.Locks_Release_FullMethodName, "")
			return nil
		})
	cmd.Flags().Uint64Var(&token, "token", 0, "the lock's token, as printed by 'baton lock NAME' (required)")
	cmd.ValidArgsFunction = e.completeNames(baton.KindLock)
	return cmd
}

func refreshCmd(e *env) *cobra.Command {
	var token uint64
	var ttl time.Duration
	cmd := leaf("refresh NAME --token T --ttl D [--session ID]",
		"Extend the lease of a lock or of a semaphore holding",
		`Sets the lease of the lock or semaphore holding NAME/T to D from now, and prints the
time left. Use it to keep a lock taken with 'baton lock NAME --ttl D' (or permits
taken with 'baton sem acquire') while a long job runs.

--json prints the baton.v1.RefreshLockResponse or RefreshSemaphoreResponse.`+
			exits("0 extended", "4 no such resource", "5 not held with this token, or NAME is neither a lock nor a semaphore"),
		`  baton refresh reports/monthly --token "$TOKEN" --ttl 10m`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			if token == 0 || ttl <= 0 {
				return usageErr("--token and --ttl are required")
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
			method := batonv1.Locks_Refresh_FullMethodName
			switch info.GetKind() {
			case baton.KindLock:
				left, err = c.Mutex(pos[0]).Held(token, e.g.session).Refresh(ctx, ttl)
			case baton.KindSemaphore:
				method = batonv1.Semaphores_Refresh_FullMethodName
				left, err = c.Semaphore(pos[0], 0).Held(token, e.g.session).Refresh(ctx, ttl)
			default:
				return &exitError{exitConflict, fmt.Sprintf("%s is %s, not a lock or semaphore", pos[0], aKind(info.GetKind()))}
			}
			if err != nil {
				return err
			}
			e.reply(method, "expires in %v\n", left.Round(time.Millisecond))
			return nil
		})
	cmd.Flags().Uint64Var(&token, "token", 0, "the holding's token (required)")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "the new lease, from now (required)")
	cmd.ValidArgsFunction = e.completeNames(baton.KindAny)
	return cmd
}

func semCmd(e *env) *cobra.Command {
	return group("sem", "Semaphores: run a command holding permits, take, return, delete",
		`A semaphore NAME has a capacity of permits, declared by the first 'sem acquire
--capacity N' (and kept until 'sem delete'); each holding takes --count of them.`,
		`  baton sem acquire gpu --capacity 2 -- ./train.sh
  baton sem delete gpu`,
		semAcquireCmd(e), semReleaseCmd(e), semDeleteCmd(e))
}

func semAcquireCmd(e *env) *cobra.Command {
	var capacity, count int64
	var ttl time.Duration
	var try bool
	cmd := &cobra.Command{
		Use:   "acquire NAME --capacity N [--count K] [--ttl D] [--try] [-- CMD [ARGS...]]",
		Short: "Run a command while holding permits, or take permits and print the token",
		Long: `As 'baton lock', with K permits (--count, default 1) of the semaphore NAME, which
has N in all (--capacity: declares it on first use and must match afterwards). With a
command after "--", CMD runs while the permits are held and gets BATON_FENCE (the
holding's token), BATON_SEMAPHORE, BATON_PERMITS, BATON_SESSION and BATON_ADDR;
signals are forwarded, the permits are returned when it exits, and baton exits with
its status. Without a command, the permits stay held after baton exits (give --ttl or
--session ID) and baton prints the token for 'sem release'.

--json prints the baton.v1.AcquireSemaphoreResponse (Semaphores/Acquire), without a
command.` + childExits,
		Example: `  baton sem acquire gpu --capacity 2 -- ./train.sh     # at most 2 trainings at once
  TOKEN=$(baton sem acquire pool --capacity 10 --count 3 --ttl 5m)
  baton sem release pool --token "$TOKEN"`,
		Annotations:       map[string]string{annotRunsChild: "yes"},
		ValidArgsFunction: e.completeNames(baton.KindSemaphore),
	}
	cmd.Flags().Int64Var(&capacity, "capacity", 0, "total permits (declares the semaphore on first use; must match once declared)")
	cmd.Flags().Int64Var(&count, "count", 1, "permits to take")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "lease: returned this long after the grant unless refreshed")
	cmd.Flags().BoolVar(&try, "try", false, "do not wait: fail (exit 3, or 67 with a command) if the permits are not free")
	applyConflict := conflictFlag(e, cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		pos, child, err := childArgs(cmd, args, 1, 1)
		if err != nil {
			return err
		}
		if err := applyConflict(); err != nil {
			return err
		}
		name := pos[0]
		opts, err := e.ownerOpts(ttl, child == nil)
		if err != nil {
			return err
		}
		s := e.client.Semaphore(name, capacity, opts...)
		ctx, cancel := e.waitCtx()
		var p *baton.Permits
		if try {
			p, err = s.TryAcquire(ctx, count)
		} else {
			p, err = s.Acquire(ctx, count)
		}
		cancel()
		if err != nil {
			return err
		}
		if child == nil {
			e.reply(batonv1.Semaphores_Acquire_FullMethodName, "%d\n", p.Token())
			return nil
		}
		h := holding{
			what: "semaphore " + name,
			env: append([]string{envVar("BATON_FENCE", p.Token()), envVar("BATON_SEMAPHORE", name),
				envVar("BATON_PERMITS", p.Count())}, e.g.serverEnv()...),
			release: p.Release,
		}
		if sess := p.Session(); sess != nil {
			h.env = append(h.env, envVar("BATON_SESSION", sess.ID()))
			h.lost, h.lostErr = sess.Done(), sess.Err
		}
		if ttl > 0 {
			h.refreshEvery = ttl / 3
			h.refresh = func(ctx context.Context) error { _, err := p.Refresh(ctx, ttl); return err }
		}
		return e.runWhileHolding(h, child)
	}
	return cmd
}

func semReleaseCmd(e *env) *cobra.Command {
	var token uint64
	var count int64
	cmd := leaf("release NAME --token T [--count K] [--session ID]",
		"Return permits taken by 'baton sem acquire' without a command",
		`Returns K permits (--count; default: all) of the holding T of semaphore NAME, and
prints how many the holding keeps.

--json prints the baton.v1.ReleaseSemaphoreResponse (Semaphores/Release).`+
			exits("0 returned", "5 not held with this token"),
		`  baton sem release pool --token "$TOKEN" --count 1`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			if token == 0 {
				return usageErr("--token is required")
			}
			c, err := e.dial()
			if err != nil {
				return err
			}
			ctx, cancel := e.callCtx()
			defer cancel()
			p := c.Semaphore(pos[0], 0).Held(token, e.g.session)
			var remaining int64
			if count > 0 {
				remaining, err = p.ReleaseN(ctx, count)
			} else {
				err = p.Release(ctx)
			}
			if err != nil {
				return err
			}
			e.reply(batonv1.Semaphores_Release_FullMethodName, "remaining %d\n", remaining)
			return nil
		})
	cmd.Flags().Uint64Var(&token, "token", 0, "the holding's token, as printed by 'baton sem acquire' (required)")
	cmd.Flags().Int64Var(&count, "count", 0, "permits to return (default: all)")
	cmd.ValidArgsFunction = e.completeNames(baton.KindSemaphore)
	return cmd
}

func semDeleteCmd(e *env) *cobra.Command {
	cmd := leaf("delete NAME", "End a semaphore's declaration (its capacity)",
		`A semaphore's capacity lasts from the first 'sem acquire --capacity N' until it is
deleted, also while nobody holds permits. After 'sem delete', the next acquire
declares it anew.

--json prints the baton.v1.DeleteSemaphoreResponse (Semaphores/Delete), also when
there was none to delete.`+
			exits("0 deleted", "4 there is no such semaphore", "5 permits are held"),
		`  baton sem delete gpu`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
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
			e.reply(batonv1.Semaphores_Delete_FullMethodName, "")
			if !ok {
				return &exitError{exitNotFound, fmt.Sprintf("no semaphore %s", pos[0])}
			}
			return nil
		})
	cmd.ValidArgsFunction = e.completeNames(baton.KindSemaphore)
	return cmd
}
