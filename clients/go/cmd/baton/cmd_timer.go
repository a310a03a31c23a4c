package main

import (
	"time"

	"github.com/spf13/cobra"

	baton "github.com/baton/baton/clients/go"
	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
)

func timerCmd(e *env) *cobra.Command {
	return group("timer", "Timers: do an action after a delay, at a time, or periodically; cancel",
		`A timer is asyncio's call_later run by the server: when it fires it does one ACTION
on another resource, whether or not its creator is still there.

ACTION is one of:
  --set-event E | --clear-event E
  --put Q --item TEXT [--priority P]
  --set-future F --value V
  --submit-task Q --payload P [--max-attempts N]
and --replace replaces a timer of the same name.`,
		`  baton timer after reminders/standup 15m --put reminders --item "standup"
  baton timer every cache/refresh 5m --submit-task cache --payload refresh`,
		timerScheduleCmd(e, "after"), timerScheduleCmd(e, "at"), timerScheduleCmd(e, "every"), timerCancelCmd(e))
}

func timerScheduleCmd(e *env, sub string) *cobra.Command {
	var setEvent, clearEvent, put, item, setFuture, value, submit, payload string
	var priority int64
	var maxAttempts int
	var replace bool
	var firstAfter time.Duration
	use, short, when, example := "after NAME DURATION ACTION", "Do an action once, after a delay",
		"after DURATION (e.g. 90s, 1h30m)", `  baton timer after deploy/unfreeze 2h --clear-event deploy/frozen`
	switch sub {
	case "at":
		use, short, when, example = "at NAME TIME ACTION", "Do an action once, at a time (RFC 3339)",
			"at TIME (RFC 3339, e.g. 2026-11-26T08:00:00Z)", `  baton timer at report/monthly 2026-12-01T06:00:00Z --submit-task reports --payload monthly`
	case "every":
		use, short, when, example = "every NAME PERIOD ACTION [--first-after D]", "Do an action periodically",
			"every PERIOD, first after one period (or --first-after D)", `  baton timer every cache/refresh 5m --submit-task cache --payload refresh --first-after 0s`
	}
	cmd := leaf(use, short,
		`Schedules timer NAME to do ACTION `+when+` and prints when it is due. ACTION is exactly
one of --set-event, --clear-event, --put (with --item), --set-future (with --value),
--submit-task (with --payload); --replace replaces a timer of the same name, which is
otherwise an error.

--json prints the baton.v1.ScheduleTimerResponse (Timers/Schedule).`+
			exits("0 scheduled", "5 a timer NAME exists (without --replace), or NAME is another kind"),
		example,
		2, 2, func(cmd *cobra.Command, pos []string) error {
			var actions []baton.TimerAction
			if setEvent != "" {
				actions = append(actions, baton.SetEventAction(setEvent))
			}
			if clearEvent != "" {
				actions = append(actions, baton.ClearEventAction(clearEvent))
			}
			if put != "" {
				actions = append(actions, baton.PutAction(put, baton.Item{Data: []byte(item), Priority: priority}))
			}
			if setFuture != "" {
				actions = append(actions, baton.SetFutureAction(setFuture, []byte(value)))
			}
			if submit != "" {
				actions = append(actions, baton.SubmitTaskAction(submit, []byte(payload), maxAttempts))
			}
			if len(actions) != 1 {
				return usageErr("give exactly one action: --set-event, --clear-event, --put, --set-future or --submit-task")
			}
			var opts []baton.TimerOption
			if replace {
				opts = append(opts, baton.Replace())
			}
			var d time.Duration
			var at time.Time
			var perr error
			if sub == "at" {
				if at, perr = time.Parse(time.RFC3339Nano, pos[1]); perr != nil {
					return usageErr("bad time %q (want RFC 3339, e.g. 2026-11-26T08:00:00Z)", pos[1])
				}
			} else if d, perr = time.ParseDuration(pos[1]); perr != nil || d < 0 {
				return usageErr("bad duration %q", pos[1])
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
			case "after":
				due, err = t.After(ctx, d, actions[0], opts...)
			case "every":
				if cmd.Flags().Changed("first-after") {
					opts = append(opts, baton.FirstAfter(firstAfter))
				}
				due, err = t.Every(ctx, d, actions[0], opts...)
			case "at":
				due, err = t.At(ctx, at, actions[0], opts...)
			}
			if err != nil {
				return err
			}
			e.reply(batonv1.Timers_Schedule_FullMethodName, "due in %v\n", due.Round(time.Millisecond))
			return nil
		})
	f := cmd.Flags()
	f.StringVar(&setEvent, "set-event", "", "action: set this event")
	f.StringVar(&clearEvent, "clear-event", "", "action: clear this event")
	f.StringVar(&put, "put", "", "action: put --item into this queue")
	f.StringVar(&item, "item", "", "the item for --put")
	f.Int64Var(&priority, "priority", 0, "the item's priority for --put")
	f.StringVar(&setFuture, "set-future", "", "action: set this future to --value")
	f.StringVar(&value, "value", "", "the value for --set-future")
	f.StringVar(&submit, "submit-task", "", "action: submit a task with --payload to this work queue")
	f.StringVar(&payload, "payload", "", "the payload for --submit-task")
	f.IntVar(&maxAttempts, "max-attempts", 0, "attempts of the task for --submit-task")
	f.BoolVar(&replace, "replace", false, "replace a timer of the same name")
	if sub == "every" {
		f.DurationVar(&firstAfter, "first-after", 0, "first firing after this long (default: one period)")
	}
	cmd.ValidArgsFunction = e.completeNames(baton.KindTimer)
	return cmd
}

func timerCancelCmd(e *env) *cobra.Command {
	cmd := leaf("cancel NAME", "Cancel a pending timer",
		`Cancels timer NAME; prints whether it was cancelled and how many times it fired.

--json prints the baton.v1.CancelTimerResponse (Timers/Cancel), also when there was no
pending timer.`+exits("0 cancelled", "4 no pending timer NAME"),
		`  baton timer cancel cache/refresh`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
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
			e.reply(batonv1.Timers_Cancel_FullMethodName, "cancelled %v (fired %d times)\n", ok, fired)
			if !ok {
				return &exitError{exitNotFound, "no pending timer " + pos[0]}
			}
			return nil
		})
	cmd.ValidArgsFunction = e.completeNames(baton.KindTimer)
	return cmd
}
