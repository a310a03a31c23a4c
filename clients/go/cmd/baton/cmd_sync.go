package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	baton "github.com/baton/baton/clients/go"
	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
)

func eventCmd(e *env) *cobra.Command {
	return group("event", "Events: set, clear, wait for, test, watch a flag",
		`An event is asyncio.Event shared by name: a flag that waiters wait to see set.`,
		`  baton event wait cache/warm --timeout 1m && ./serve
  baton event set cache/warm`,
		eventSetCmd(e), eventClearCmd(e), eventWaitCmd(e), eventIsSetCmd(e), eventWatchCmd(e))
}

func eventSetCmd(e *env) *cobra.Command {
	cmd := leaf("set NAME", "Set an event, waking its waiters",
		`Sets the flag of event NAME and prints how many waiters it woke.

--json prints the baton.v1.SetEventResponse (Events/Set).`+exits("0 set", "5 NAME is another kind"),
		`  baton event set cache/warm`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			c, err := e.dial()
			if err != nil {
				return err
			}
			ctx, cancel := e.callCtx()
			defer cancel()
			woken, err := c.Event(pos[0]).Set(ctx)
			if err != nil {
				return err
			}
			e.reply(batonv1.Events_Set_FullMethodName, "woke %d\n", woken)
			return nil
		})
	cmd.ValidArgsFunction = e.completeNames(baton.KindEvent)
	return cmd
}

func eventClearCmd(e *env) *cobra.Command {
	cmd := leaf("clear NAME", "Clear an event",
		`Clears the flag of event NAME; prints nothing.

--json prints the baton.v1.ClearEventResponse (Events/Clear).`+exits("0 clear", "5 NAME is another kind"),
		`  baton event clear cache/warm`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			c, err := e.dial()
			if err != nil {
				return err
			}
			ctx, cancel := e.callCtx()
			defer cancel()
			if _, err := c.Event(pos[0]).Clear(ctx); err != nil {
				return err
			}
			e.reply(batonv1.Events_Clear_FullMethodName, "")
			return nil
		})
	cmd.ValidArgsFunction = e.completeNames(baton.KindEvent)
	return cmd
}

func eventWaitCmd(e *env) *cobra.Command {
	cmd := leaf("wait NAME", "Wait until an event is set",
		`Returns when event NAME is set (at once if it is), or after --timeout (exit 3). Prints
nothing.

--json prints the baton.v1.WaitEventResponse (Events/Wait).`+
			exits("0 set", "3 not set within --timeout", "5 NAME is another kind", "130 interrupted"),
		`  baton event wait cache/warm --timeout 1m && ./serve`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			c, err := e.dial()
			if err != nil {
				return err
			}
			ctx, cancel := e.waitCtx()
			defer cancel()
			if err := c.Event(pos[0]).Wait(ctx); err != nil {
				return err
			}
			e.reply(batonv1.Events_Wait_FullMethodName, "")
			return nil
		})
	cmd.ValidArgsFunction = e.completeNames(baton.KindEvent)
	return cmd
}

func eventIsSetCmd(e *env) *cobra.Command {
	cmd := leaf("is-set NAME", "Tell whether an event is set (exit 0) or clear (exit 3)",
		`Prints true or false, without waiting, and exits 0 if event NAME is set, 3 if it is
clear (an event never used is clear).

--json prints the baton.v1.WaitEventResponse of a Wait that does not wait; for a
clear event (which the server answers with DEADLINE_EXCEEDED), a WaitEventResponse
with "state": "EVENT_STATE_CLEAR".`+exits("0 set", "3 clear", "5 NAME is another kind"),
		`  if baton event is-set maintenance; then echo "in maintenance"; fi`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			c, err := e.dial()
			if err != nil {
				return err
			}
			ctx, cancel := e.callCtx()
			defer cancel()
			set, err := c.Event(pos[0]).IsSet(ctx)
			if err != nil {
				return err
			}
			if e.g.json && !set {
				e.printMsg(&batonv1.WaitEventResponse{State: batonv1.EventState_EVENT_STATE_CLEAR})
			} else {
				e.reply(batonv1.Events_Wait_FullMethodName, "%v\n", set)
			}
			if !set {
				return &exitError{exitTimeout, ""}
			}
			return nil
		})
	cmd.ValidArgsFunction = e.completeNames(baton.KindEvent)
	return cmd
}

func eventWatchCmd(e *env) *cobra.Command {
	var count int
	cmd := leaf("watch NAME [--count N]", "Print an event's state, then every change",
		`Prints "set" or "clear": the current state of event NAME, then each change, until
interrupted (exit 130), --timeout (exit 3) or --count states. A slow reader sees the
latest state rather than every intermediate one.

--json prints each baton.v1.EventChange of the stream (Events/Watch), one per line.`+
			exits("0 --count states seen", "3 --timeout passed", "5 NAME is another kind", "130 interrupted"),
		`  baton event watch maintenance --json | jq -r .state`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			c, err := e.dial()
			if err != nil {
				return err
			}
			ctx, cancel := e.waitCtx()
			defer cancel()
			n := 0
			for ch, err := range c.Event(pos[0]).Watch(ctx) {
				if err != nil {
					return err
				}
				state := "clear"
				if ch.Set {
					state = "set"
				}
				e.reply(batonv1.Events_Watch_FullMethodName, "%s\n", state)
				if n++; count > 0 && n >= count {
					break
				}
			}
			return nil
		})
	cmd.Flags().IntVar(&count, "count", 0, "stop after this many states (default: until interrupted or --timeout)")
	cmd.ValidArgsFunction = e.completeNames(baton.KindEvent)
	return cmd
}

func futureCmd(e *env) *cobra.Command {
	return group("future", "Futures: set a value or an error once, await it, cancel",
		`A future is asyncio.Future shared by name: set once (a value, an error, or
cancelled), awaited by anyone, kept for its retention after it is done.`,
		`  baton future await build/42/artifact --timeout 10m > artifact.txt
  echo done | baton future set build/42/artifact -`,
		futureSetCmd(e), futureSetErrorCmd(e), futureAwaitCmd(e), futureCancelCmd(e))
}

func retentionFlag(cmd *cobra.Command) *time.Duration {
	return cmd.Flags().Duration("retention", 0, "how long the done future is kept (default: the server's)")
}

func futureSetCmd(e *env) *cobra.Command {
	var retention *time.Duration
	cmd := leaf("set NAME VALUE|- [--retention D]", "Set a future's value ('-' reads it from stdin)",
		`Completes future NAME with VALUE (or stdin with '-'), waking its awaiters; prints how
many it woke.

--json prints the baton.v1.SetResultResponse (Futures/SetResult).`+
			exits("0 set", "5 already done, or NAME is another kind"),
		`  baton future set build/42/artifact s3://bucket/42.tar
  ./build.sh | baton future set build/42/log -`,
		2, 2, func(cmd *cobra.Command, pos []string) error {
			value := []byte(pos[1])
			if pos[1] == "-" {
				var err error
				if value, err = io.ReadAll(e.stdin); err != nil {
					return err
				}
			}
			c, err := e.dial()
			if err != nil {
				return err
			}
			ctx, cancel := e.callCtx()
			defer cancel()
			woken, err := c.Future(pos[0], baton.WithRetention(*retention)).Set(ctx, value)
			if err != nil {
				return err
			}
			e.reply(batonv1.Futures_SetResult_FullMethodName, "woke %d\n", woken)
			return nil
		})
	retention = retentionFlag(cmd)
	cmd.ValidArgsFunction = e.completeNames(baton.KindFuture)
	return cmd
}

func futureSetErrorCmd(e *env) *cobra.Command {
	var retention *time.Duration
	var code int32
	var msg string
	cmd := leaf("set-error NAME --code C --message M", "Fail a future with an error code and message",
		`Completes future NAME with an error: its awaiters get code C and message M
('future await' exits 7 and prints them on stderr).

--json prints the baton.v1.SetResultResponse (Futures/SetException).`+
			exits("0 set", "5 already done, or NAME is another kind"),
		`  baton future set-error build/42/artifact --code 2 --message "compiler crashed"`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			c, err := e.dial()
			if err != nil {
				return err
			}
			ctx, cancel := e.callCtx()
			defer cancel()
			woken, err := c.Future(pos[0], baton.WithRetention(*retention)).SetError(ctx, code, msg)
			if err != nil {
				return err
			}
			e.reply(batonv1.Futures_SetException_FullMethodName, "woke %d\n", woken)
			return nil
		})
	retention = retentionFlag(cmd)
	cmd.Flags().Int32Var(&code, "code", 0, "the error code")
	cmd.Flags().StringVar(&msg, "message", "", "the error message")
	cmd.ValidArgsFunction = e.completeNames(baton.KindFuture)
	return cmd
}

func futureAwaitCmd(e *env) *cobra.Command {
	cmd := leaf("await NAME", "Wait for a future and print its value",
		`Waits until future NAME is done and prints its value (a newline is added if it has
none). A future failed with 'set-error' or cancelled exits 7, its error on stderr.

--json prints the baton.v1.AwaitFutureResponse (Futures/Await), also when it failed or
was cancelled.`+
			exits("0 the value", "7 the future failed or was cancelled", "3 not done within --timeout", "5 NAME is another kind", "130 interrupted"),
		`  baton future await build/42/artifact --timeout 10m`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			c, err := e.dial()
			if err != nil {
				return err
			}
			ctx, cancel := e.waitCtx()
			defer cancel()
			v, err := c.Future(pos[0]).Await(ctx)
			return e.printOutcome("future "+pos[0], batonv1.Futures_Await_FullMethodName, v, err)
		})
	cmd.ValidArgsFunction = e.completeNames(baton.KindFuture)
	return cmd
}

func futureCancelCmd(e *env) *cobra.Command {
	var retention *time.Duration
	cmd := leaf("cancel NAME", "Cancel a future that is not done",
		`Cancels future NAME: its awaiters see it cancelled ('future await' exits 7). Prints
whether it was cancelled; a future already done is not, and exits 5.

--json prints the baton.v1.CancelFutureResponse (Futures/Cancel).`+
			exits("0 cancelled", "5 already done, or NAME is another kind"),
		`  baton future cancel build/42/artifact`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			c, err := e.dial()
			if err != nil {
				return err
			}
			ctx, cancel := e.callCtx()
			defer cancel()
			ok, err := c.Future(pos[0], baton.WithRetention(*retention)).Cancel(ctx)
			if err != nil {
				return err
			}
			e.reply(batonv1.Futures_Cancel_FullMethodName, "cancelled %v\n", ok)
			if !ok {
				return &exitError{exitConflict, fmt.Sprintf("future %s was already done", pos[0])}
			}
			return nil
		})
	retention = retentionFlag(cmd)
	cmd.ValidArgsFunction = e.completeNames(baton.KindFuture)
	return cmd
}

// printOutcome prints a future's or task's value (the reply of method with
// --json), or returns its remote error (exit 7).
func (e *env) printOutcome(what, method string, v []byte, err error) error {
	var re *baton.RemoteError
	switch {
	case err == nil:
		if e.g.json {
			e.reply(method, "")
		} else {
			s := string(v)
			if !strings.HasSuffix(s, "\n") {
				s += "\n"
			}
			fmt.Fprint(e.stdout, s)
		}
		return nil
	case errors.As(err, &re):
		e.reply(method, "")
		return &exitError{exitRemoteError, fmt.Sprintf("%s failed: error %d: %s", what, re.Code, re.Message)}
	case errors.Is(err, baton.ErrFutureCancelled) || errors.Is(err, baton.ErrTaskCancelled):
		e.reply(method, "")
		return &exitError{exitRemoteError, what + " was cancelled"}
	}
	return err
}

func barrierCmd(e *env) *cobra.Command {
	return group("barrier", "Barriers: wait until N parties arrive; abort, reset",
		`A barrier is asyncio.Barrier shared by name: 'wait' returns once --parties callers
wait together; then the barrier can be used again (its next cycle).`,
		`  baton barrier wait deploy/step1 --parties 3 --timeout 5m`,
		barrierWaitCmd(e), barrierAbortCmd(e, "abort"), barrierAbortCmd(e, "reset"))
}

func barrierWaitCmd(e *env) *cobra.Command {
	var parties int
	cmd := leaf("wait NAME --parties N", "Wait at a barrier until N parties are there",
		`Waits at barrier NAME until N parties wait (--parties: required on first use, must
match afterwards), then prints this caller's arrival index (0..N-1).

--json prints the baton.v1.BarrierWaitResponse (Barriers/Wait).`+
			exits("0 passed", "3 not passed within --timeout", "5 the barrier was aborted (broken), or NAME is another kind", "130 interrupted"),
		`  baton barrier wait deploy/step1 --parties 3 --timeout 5m`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			c, err := e.dial()
			if err != nil {
				return err
			}
			ctx, cancel := e.waitCtx()
			defer cancel()
			p, err := c.Barrier(pos[0], parties).Wait(ctx)
			if err != nil {
				return err
			}
			e.reply(batonv1.Barriers_Wait_FullMethodName, "%d\n", p.Index)
			return nil
		})
	cmd.Flags().IntVar(&parties, "parties", 0, "parties needed to pass the barrier (required on first use)")
	cmd.ValidArgsFunction = e.completeNames(baton.KindBarrier)
	return cmd
}

func barrierAbortCmd(e *env, sub string) *cobra.Command {
	short, long, method := "Break a barrier: its waiters fail (exit 5)",
		`Breaks barrier NAME: every waiter fails (their 'barrier wait' exits 5) and so does
every later wait, until 'barrier reset'. Prints how many waiters it aborted.

--json prints the baton.v1.BarrierAbortResponse (Barriers/Abort).`, batonv1.Barriers_Abort_FullMethodName
	if sub == "reset" {
		short, long, method = "Reset a barrier to its first cycle, aborting its waiters",
			`Resets barrier NAME: waiters now waiting fail (exit 5), and the barrier is whole
again. Prints how many waiters it aborted.

--json prints the baton.v1.BarrierResetResponse (Barriers/Reset).`, batonv1.Barriers_Reset_FullMethodName
	}
	cmd := leaf(sub+" NAME", short, long+exits("0 done", "5 NAME is another kind"),
		"  baton barrier "+sub+" deploy/step1",
		1, 1, func(cmd *cobra.Command, pos []string) error {
			c, err := e.dial()
			if err != nil {
				return err
			}
			ctx, cancel := e.callCtx()
			defer cancel()
			b := c.Barrier(pos[0], 0)
			var n int
			if sub == "abort" {
				n, err = b.Abort(ctx)
			} else {
				n, err = b.Reset(ctx)
			}
			if err != nil {
				return err
			}
			e.reply(method, "aborted %d waiters\n", n)
			return nil
		})
	cmd.ValidArgsFunction = e.completeNames(baton.KindBarrier)
	return cmd
}
