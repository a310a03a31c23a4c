package main

import (
	"time"

	baton "github.com/baton/baton/clients/go"
)

// timer after|at|every NAME WHEN ACTION, timer cancel NAME
func cmdTimer(e *env, args []string) error {
	if len(args) == 0 {
		return usageErr("usage: baton timer after|at|every|cancel NAME ...")
	}
	sub := args[0]
	fs := e.newFlags("timer " + sub)
	setEvent := fs.String("set-event", "", "action: set this event")
	clearEvent := fs.String("clear-event", "", "action: clear this event")
	put := fs.String("put", "", "action: put --item into this queue")
	item := fs.String("item", "", "the item for --put")
	priority := fs.Int64("priority", 0, "the item's priority for --put")
	setFuture := fs.String("set-future", "", "action: set this future to --value")
	value := fs.String("value", "", "the value for --set-future")
	submit := fs.String("submit-task", "", "action: submit a task with --payload to this work queue")
	payload := fs.String("payload", "", "the payload for --submit-task")
	maxAttempts := fs.Int("max-attempts", 0, "attempts of the task for --submit-task")
	replace := fs.Bool("replace", false, "replace a timer of the same name")
	firstAfter := fs.Duration("first-after", -1, "every: first firing after this long (default: one period)")
	pos, _, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if sub == "cancel" {
		if err := need(fs, pos, 1, 1, "NAME"); err != nil {
			return err
		}
		c, err := e.dial()
		if err != nil {
			return err
		}
		ctx, cancel := e.callCtx()
		defer cancel()
		ok, fired, err := c.Timer(pos[0]).Cancel(ctx)
		if err != nil {
			return err
		}
		e.print(map[string]any{"name": pos[0], "cancelled": ok, "fired": u64(fired)}, "cancelled %v (fired %d times)\n", ok, fired)
		if !ok {
			return &exitError{exitNotFound, "no pending timer " + pos[0]}
		}
		return nil
	}
	var when string
	switch sub {
	case "after":
		when = "DURATION"
	case "at":
		when = "TIME (RFC 3339, e.g. 2026-11-26T08:00:00Z)"
	case "every":
		when = "PERIOD"
	default:
		return usageErr("usage: baton timer after|at|every|cancel NAME ...: unknown subcommand %q", sub)
	}
	if err := need(fs, pos, 2, 2, "NAME "+when+" ACTION"); err != nil {
		return err
	}
	var actions []baton.TimerAction
	if *setEvent != "" {
		actions = append(actions, baton.SetEventAction(*setEvent))
	}
	if *clearEvent != "" {
		actions = append(actions, baton.ClearEventAction(*clearEvent))
	}
	if *put != "" {
		actions = append(actions, baton.PutAction(*put, baton.Item{Data: []byte(*item), Priority: *priority}))
	}
	if *setFuture != "" {
		actions = append(actions, baton.SetFutureAction(*setFuture, []byte(*value)))
	}
	if *submit != "" {
		actions = append(actions, baton.SubmitTaskAction(*submit, []byte(*payload), *maxAttempts))
	}
	if len(actions) != 1 {
		return usageErr("give exactly one action: --set-event, --clear-event, --put, --set-future or --submit-task")
	}
	var opts []baton.TimerOption
	if *replace {
		opts = append(opts, baton.Replace())
	}
	c, err := e.dial()
	if err != nil {
		return err
	}
	ctx, cancel := e.callCtx()
	defer cancel()
	t := c.Timer(pos[0])
	var due time.Duration
	switch sub {
	case "after", "every":
		d, perr := time.ParseDuration(pos[1])
		if perr != nil || d < 0 {
			return usageErr("bad duration %q", pos[1])
		}
		if sub == "after" {
			due, err = t.After(ctx, d, actions[0], opts...)
		} else {
			if *firstAfter >= 0 {
				opts = append(opts, baton.FirstAfter(*firstAfter))
			}
			due, err = t.Every(ctx, d, actions[0], opts...)
		}
	case "at":
		at, perr := time.Parse(time.RFC3339Nano, pos[1])
		if perr != nil {
			return usageErr("bad time %q (want RFC 3339, e.g. 2026-11-26T08:00:00Z)", pos[1])
		}
		due, err = t.At(ctx, at, actions[0], opts...)
	}
	if err != nil {
		return err
	}
	e.print(map[string]any{"name": pos[0], "due_in": jsonDur(due)}, "due in %v\n", due.Round(time.Millisecond))
	return nil
}
