package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	baton "github.com/baton/baton/clients/go"
)

// event set|clear|wait|is-set|watch NAME
func cmdEvent(e *env, args []string) error {
	if len(args) == 0 {
		return usageErr("usage: baton event set|clear|wait|is-set|watch NAME")
	}
	sub := args[0]
	fs := e.newFlags("event " + sub)
	count := fs.Int("count", 0, "watch: stop after this many states (default: until interrupted)")
	pos, _, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	switch sub {
	case "set", "clear", "wait", "is-set", "watch":
	default:
		return usageErr("usage: baton event set|clear|wait|is-set|watch NAME: unknown subcommand %q", sub)
	}
	if err := need(fs, pos, 1, 1, "NAME"); err != nil {
		return err
	}
	c, err := e.dial()
	if err != nil {
		return err
	}
	ev := c.Event(pos[0])
	switch sub {
	case "set":
		ctx, cancel := e.callCtx()
		defer cancel()
		woken, err := ev.Set(ctx)
		if err != nil {
			return err
		}
		e.print(map[string]any{"name": pos[0], "woken": woken}, "woke %d\n", woken)
	case "clear":
		ctx, cancel := e.callCtx()
		defer cancel()
		was, err := ev.Clear(ctx)
		if err != nil {
			return err
		}
		e.print(map[string]any{"name": pos[0], "was_set": was}, "")
	case "wait":
		ctx, cancel := e.waitCtx()
		defer cancel()
		if err := ev.Wait(ctx); err != nil {
			return err
		}
		e.print(map[string]any{"name": pos[0], "set": true}, "")
	case "is-set":
		ctx, cancel := e.callCtx()
		defer cancel()
		set, err := ev.IsSet(ctx)
		if err != nil {
			return err
		}
		e.print(map[string]any{"name": pos[0], "set": set}, "%v\n", set)
		if !set {
			return &exitError{exitTimeout, ""}
		}
	case "watch":
		ctx, cancel := e.waitCtx()
		defer cancel()
		n := 0
		for ch, err := range ev.Watch(ctx) {
			if err != nil {
				return err
			}
			state := "clear"
			if ch.Set {
				state = "set"
			}
			e.print(map[string]any{"name": pos[0], "state": state, "sequence": u64(ch.Sequence)}, "%s\n", state)
			if n++; *count > 0 && n >= *count {
				break
			}
		}
	}
	return nil
}

// future set|set-error|await|cancel NAME
func cmdFuture(e *env, args []string) error {
	if len(args) == 0 {
		return usageErr("usage: baton future set|set-error|await|cancel NAME ...")
	}
	sub := args[0]
	fs := e.newFlags("future " + sub)
	retention := fs.Duration("retention", 0, "how long the done future is kept (default: the server's)")
	code := fs.Int("code", 0, "set-error: the error code")
	msg := fs.String("message", "", "set-error: the error message")
	pos, _, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	switch sub {
	case "set":
		err = need(fs, pos, 2, 2, "NAME VALUE ('-': read the value from stdin)")
	case "set-error", "await", "cancel":
		err = need(fs, pos, 1, 1, "NAME")
	default:
		err = usageErr("usage: baton future set|set-error|await|cancel NAME: unknown subcommand %q", sub)
	}
	if err != nil {
		return err
	}
	c, err := e.dial()
	if err != nil {
		return err
	}
	f := c.Future(pos[0], baton.WithRetention(*retention))
	switch sub {
	case "set":
		value := []byte(pos[1])
		if pos[1] == "-" {
			if value, err = io.ReadAll(e.stdin); err != nil {
				return err
			}
		}
		ctx, cancel := e.callCtx()
		defer cancel()
		woken, err := f.Set(ctx, value)
		if err != nil {
			return err
		}
		e.print(map[string]any{"name": pos[0], "woken": woken}, "woke %d\n", woken)
	case "set-error":
		ctx, cancel := e.callCtx()
		defer cancel()
		woken, err := f.SetError(ctx, int32(*code), *msg)
		if err != nil {
			return err
		}
		e.print(map[string]any{"name": pos[0], "woken": woken}, "woke %d\n", woken)
	case "cancel":
		ctx, cancel := e.callCtx()
		defer cancel()
		ok, err := f.Cancel(ctx)
		if err != nil {
			return err
		}
		e.print(map[string]any{"name": pos[0], "cancelled": ok}, "cancelled %v\n", ok)
		if !ok {
			return &exitError{exitConflict, fmt.Sprintf("future %s was already done", pos[0])}
		}
	case "await":
		ctx, cancel := e.waitCtx()
		defer cancel()
		v, err := f.Await(ctx)
		return e.printOutcome("future "+pos[0], map[string]any{"name": pos[0]}, v, err)
	}
	return nil
}

// printOutcome prints a future's or task's value, or its remote error (exit 7).
func (e *env) printOutcome(what string, obj map[string]any, v []byte, err error) error {
	var re *baton.RemoteError
	switch {
	case err == nil:
		obj["state"] = "result"
		obj["value"] = base64.StdEncoding.EncodeToString(v)
		if utf8.Valid(v) {
			obj["text"] = string(v)
		}
		if e.g.json {
			e.print(obj, "")
		} else {
			s := string(v)
			if !strings.HasSuffix(s, "\n") {
				s += "\n"
			}
			fmt.Fprint(e.stdout, s)
		}
		return nil
	case errors.As(err, &re):
		obj["state"] = "exception"
		obj["error_code"] = re.Code
		obj["error_message"] = re.Message
		e.print(obj, "")
		return &exitError{exitRemoteError, fmt.Sprintf("%s failed: error %d: %s", what, re.Code, re.Message)}
	case errors.Is(err, baton.ErrFutureCancelled) || errors.Is(err, baton.ErrTaskCancelled):
		obj["state"] = "cancelled"
		e.print(obj, "")
		return &exitError{exitRemoteError, what + " was cancelled"}
	}
	return err
}

// barrier wait|abort|reset NAME
func cmdBarrier(e *env, args []string) error {
	if len(args) == 0 {
		return usageErr("usage: baton barrier wait|abort|reset NAME")
	}
	sub := args[0]
	fs := e.newFlags("barrier " + sub)
	parties := fs.Int("parties", 0, "wait: parties needed to trip the barrier (required on first use)")
	pos, _, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	switch sub {
	case "wait", "abort", "reset":
	default:
		return usageErr("usage: baton barrier wait|abort|reset NAME: unknown subcommand %q", sub)
	}
	if err := need(fs, pos, 1, 1, "NAME"); err != nil {
		return err
	}
	c, err := e.dial()
	if err != nil {
		return err
	}
	b := c.Barrier(pos[0], *parties)
	switch sub {
	case "wait":
		ctx, cancel := e.waitCtx()
		defer cancel()
		p, err := b.Wait(ctx)
		if err != nil {
			return err
		}
		e.print(map[string]any{"name": pos[0], "index": p.Index, "cycle": u64(p.Cycle)}, "%d\n", p.Index)
	default:
		ctx, cancel := e.callCtx()
		defer cancel()
		var n int
		if sub == "abort" {
			n, err = b.Abort(ctx)
		} else {
			n, err = b.Reset(ctx)
		}
		if err != nil {
			return err
		}
		e.print(map[string]any{"name": pos[0], "aborted": n}, "aborted %d waiters\n", n)
	}
	return nil
}
