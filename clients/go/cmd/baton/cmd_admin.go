package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	baton "github.com/baton/baton/clients/go"
	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
)

var kinds = map[string]baton.Kind{
	"lock": baton.KindLock, "semaphore": baton.KindSemaphore, "event": baton.KindEvent, "queue": baton.KindQueue,
	"future": baton.KindFuture, "barrier": baton.KindBarrier, "timer": baton.KindTimer, "tasks": baton.KindTasks,
}

func kindName(k baton.Kind) string {
	for n, v := range kinds {
		if v == k {
			return n
		}
	}
	return strings.ToLower(k.String())
}

// aKind is "a lock", "an event", ... for messages.
func aKind(k baton.Kind) string {
	n := kindName(k)
	if strings.ContainsRune("aeiou", rune(n[0])) {
		return "an " + n
	}
	return "a " + n
}

func listCmd(e *env) *cobra.Command {
	var kind string
	cmd := leaf("ls [PREFIX] [--kind K]", "List live resources: NAME, KIND, HOLDERS, WAITERS",
		`Lists the live resources whose names start with PREFIX, in name order, optionally of
one kind (--kind lock, semaphore, event, queue, future, barrier, timer, tasks), as a
table. A resource is live while it is in use, declared or keeps state; idle ones are
reclaimed.

--json prints one baton.v1.ListResponse (Admin/List) with the resources of every page.`+
			exits("0 listed (also when nothing matches)"),
		`  baton ls billing/
  baton ls --kind queue --json | jq -r '.resources[].name'`,
		0, 1, func(cmd *cobra.Command, pos []string) error {
			k := baton.KindAny
			if kind != "" {
				var ok bool
				if k, ok = kinds[kind]; !ok {
					return usageErr("unknown kind %q (lock, semaphore, event, queue, future, barrier, timer, tasks)", kind)
				}
			}
			prefix := ""
			if len(pos) == 1 {
				prefix = pos[0]
			}
			c, err := e.dial()
			if err != nil {
				return err
			}
			ctx, cancel := e.callCtx()
			defer cancel()
			e.rec.keepAll(batonv1.Admin_List_FullMethodName)
			rs, err := c.List(ctx, prefix, k)
			if err != nil {
				return err
			}
			if e.g.json {
				all := &batonv1.ListResponse{}
				for _, m := range e.rec.allReplies(batonv1.Admin_List_FullMethodName) {
					all.Resources = append(all.Resources, m.(*batonv1.ListResponse).GetResources()...)
				}
				e.printMsg(all)
				return nil
			}
			if len(rs) == 0 {
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tKIND\tHOLDERS\tWAITERS")
			for _, r := range rs {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", r.Name, kindName(r.Kind), r.Holders, r.Waiters)
			}
			return tw.Flush()
		})
	cmd.Flags().StringVar(&kind, "kind", "", "only this kind: lock, semaphore, event, queue, future, barrier, timer, tasks")
	_ = cmd.RegisterFlagCompletionFunc("kind", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"lock", "semaphore", "event", "queue", "future", "barrier", "timer", "tasks"}, cobra.ShellCompDirectiveNoFileComp
	})
	cmd.ValidArgsFunction = e.completeNames(baton.KindAny)
	return cmd
}

func describeCmd(e *env) *cobra.Command {
	cmd := leaf("describe NAME", "Show a resource: its holders, waiters and state",
		`Shows resource NAME: its kind, holders (token, session, lease left), waiters and the
state of its kind (a queue's sizes, an event's flag, a timer's next firing, ...).

--json prints the baton.v1.DescribeResponse (Admin/Describe).`+
			exits("0 described", "4 no such resource (never used, or reclaimed because idle)"),
		`  baton describe billing/migrate
  baton describe jobs --json | jq .queue.size`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
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
			if e.g.json {
				e.reply(batonv1.Admin_Describe_FullMethodName, "")
				return nil
			}
			fmt.Fprint(e.stdout, describeText(info))
			return nil
		})
	cmd.ValidArgsFunction = e.completeNames(baton.KindAny)
	return cmd
}

func d(p *durationpb.Duration) string {
	if p == nil {
		return "-"
	}
	return p.AsDuration().Round(time.Millisecond).String()
}

// describeText renders Admin/Describe for a person, kind by kind.
func describeText(r *baton.ResourceInfo) string {
	var b strings.Builder
	line := func(k string, v any) { fmt.Fprintf(&b, "%-16s%v\n", k+":", v) }
	line("name", r.GetName())
	line("kind", kindName(r.GetKind()))
	switch r.GetKind() {
	case baton.KindLock, baton.KindSemaphore, baton.KindTasks:
		if r.GetKind() == baton.KindSemaphore {
			line("capacity", r.GetCapacity())
			line("available", r.GetAvailable())
		}
		if r.GetKind() != baton.KindTasks {
			line("last token", r.GetLastToken())
		}
		what := "holders"
		if r.GetKind() == baton.KindTasks {
			what = "running"
			line("pending", r.GetTasks().GetPending())
			line("done", r.GetTasks().GetDone())
		}
		line(what, len(r.GetHolders()))
		for _, h := range r.GetHolders() {
			fmt.Fprintf(&b, "  token %d  session %d  count %d  held %s  lease left %s", h.GetToken(), h.GetSessionId(), h.GetCount(), d(h.GetHeldFor()), d(h.GetExpiresIn()))
			if h.GetRequestId() != "" {
				fmt.Fprintf(&b, "  request %s", h.GetRequestId())
			}
			b.WriteString("\n")
		}
		for _, cnd := range r.GetConditions() {
			name := cnd.GetCondition()
			if name == "" {
				name = `""`
			}
			fmt.Fprintf(&b, "  condition %s: %d waiting, %d re-acquiring\n", name, cnd.GetWaiters(), cnd.GetReacquiring())
		}
	case baton.KindEvent:
		line("state", strings.ToLower(strings.TrimPrefix(r.GetEventState().String(), "EVENT_STATE_")))
		line("watchers", r.GetWatchers())
	case baton.KindQueue:
		q := r.GetQueue()
		line("order", strings.ToLower(strings.TrimPrefix(q.GetOrder().String(), "QUEUE_ORDER_")))
		line("maxsize", q.GetMaxsize())
		line("max deliveries", q.GetMaxDeliveries())
		line("size", q.GetSize())
		line("delayed", q.GetDelayed())
		line("in flight", q.GetInFlight())
		line("dead letters", q.GetDeadLetters())
		line("unfinished", q.GetUnfinished())
		line("oldest item", d(q.GetOldestItemAge()))
		line("getters", q.GetWaitingGetters())
		line("putters", q.GetWaitingPutters())
		line("joiners", q.GetWaitingJoiners())
		line("total put", q.GetTotalPut())
		line("total acked", q.GetTotalAcked())
	case baton.KindFuture:
		line("state", strings.ToLower(strings.TrimPrefix(r.GetFutureState().String(), "FUTURE_STATE_")))
		line("retained for", d(r.GetRetainedFor()))
	case baton.KindBarrier:
		bi := r.GetBarrier()
		line("parties", bi.GetParties())
		line("arrived", bi.GetArrived())
		line("broken", bi.GetBroken())
		line("cycles", bi.GetCycles())
	case baton.KindTimer:
		ti := r.GetTimer()
		line("action", ti.GetAction())
		line("due in", d(ti.GetDueIn()))
		line("every", d(ti.GetEvery()))
		line("fired", ti.GetFired())
		line("since fired", d(ti.GetSinceFired()))
	}
	if r.GetKind() != baton.KindBarrier {
		line("waiters", r.GetWaiters())
		if r.GetOldestWait() != nil {
			line("oldest wait", d(r.GetOldestWait()))
		}
	}
	return b.String()
}

func sessionCmd(e *env) *cobra.Command {
	return group("session", "Sessions: open one for several commands, keep it alive, describe, close",
		`A session owns what is acquired under it (with --session ID) and releases all of it
when it ends: when closed, or when nobody keeps it alive for its TTL. Each baton
command opens its own session unless given --session.`,
		`  SESSION=$(baton session open --ttl 30s)
  baton session keepalive "$SESSION" --follow &
  baton --session "$SESSION" lock db/primary --try && ...
  baton session close "$SESSION"`,
		sessionOpenCmd(e), sessionKeepAliveCmd(e), sessionDescribeCmd(e), sessionCloseCmd(e))
}

func sessionOpenCmd(e *env) *cobra.Command {
	var ttl time.Duration
	var lbl string
	cmd := leaf("open [--ttl D] [--label L]", "Open a session and print its id",
		`Opens a session with a TTL of D (default 1m) and prints its id. It outlives baton: it
lives D unless kept alive ('session keepalive ID --follow', or any client resuming it),
and everything acquired with --session ID is released when it ends.

--json prints the baton.v1.OpenSessionResponse (Sessions/Open).`+exits("0 opened"),
		`  SESSION=$(baton session open --ttl 30s --label nightly-job)`,
		0, 0, func(cmd *cobra.Command, pos []string) error {
			c, err := e.dial()
			if err != nil {
				return err
			}
			if lbl == "" {
				lbl = label()
			}
			ctx, cancel := e.callCtx()
			defer cancel()
			s, err := c.NewSession(ctx, baton.WithSessionTTL(ttl), baton.WithSessionLabel(lbl))
			if err != nil {
				return err
			}
			s.Orphan() // it outlives baton: kept alive by 'session keepalive' or other clients
			e.reply(batonv1.Sessions_Open_FullMethodName, "%d\n", s.ID())
			return nil
		})
	cmd.Flags().DurationVar(&ttl, "ttl", time.Minute, "the session's TTL")
	cmd.Flags().StringVar(&lbl, "label", "", "a label shown by 'session describe' (default baton-cli:HOST:PID)")
	return cmd
}

func sessionID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, usageErr("bad session id %q", s)
	}
	return id, nil
}

func sessionKeepAliveCmd(e *env) *cobra.Command {
	var follow bool
	cmd := leaf("keepalive ID [--follow]", "Keep a session alive: once, or until interrupted",
		`Renews session ID's TTL and prints the time left. With --follow, keeps it alive
until interrupted or --timeout (then stops renewing; the session lives on for its TTL),
printing nothing; exits 5 if the session ends meanwhile.

--json prints the baton.v1.KeepAliveResponse (Sessions/KeepAlive), without --follow.`+
			exits("0 renewed (--follow: stopped by an interrupt or --timeout)", "4 no such session", "5 the session ended while followed"),
		`  baton session keepalive "$SESSION"
  baton session keepalive "$SESSION" --follow &`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			id, err := sessionID(pos[0])
			if err != nil {
				return err
			}
			c, err := e.dial()
			if err != nil {
				return err
			}
			if !follow {
				ctx, cancel := e.callCtx()
				defer cancel()
				left, err := c.KeepAliveSession(ctx, id)
				if err != nil {
					return err
				}
				e.reply(batonv1.Sessions_KeepAlive_FullMethodName, "expires in %v\n", left.Round(time.Millisecond))
				return nil
			}
			ctx, cancel := e.callCtx()
			s, err := c.ResumeSession(ctx, id)
			cancel()
			if err != nil {
				return err
			}
			e.resumed = append(e.resumed, s)
			wctx, wcancel := e.waitCtx()
			defer wcancel()
			select {
			case <-s.Done():
				return &exitError{exitConflict, fmt.Sprintf("session %d lost: %v", id, s.Err())}
			case <-wctx.Done():
				return nil // interrupted or --timeout: stop keeping it alive
			}
		})
	cmd.Flags().BoolVar(&follow, "follow", false, "keep the session alive until interrupted (or --timeout)")
	return cmd
}

func sessionDescribeCmd(e *env) *cobra.Command {
	return leaf("describe ID", "Show a session: label, TTL, age, time left, open streams",
		`Shows session ID: its label, TTL, age, the time left before it expires (unless a
stream keeps it open) and its open keep-alive streams.

--json prints the baton.v1.DescribeSessionResponse (Sessions/Describe).`+
			exits("0 described", "4 no such session"),
		`  baton session describe "$SESSION"`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			id, err := sessionID(pos[0])
			if err != nil {
				return err
			}
			c, err := e.dial()
			if err != nil {
				return err
			}
			ctx, cancel := e.callCtx()
			defer cancel()
			info, err := c.DescribeSession(ctx, id)
			if err != nil {
				return err
			}
			exp := "- (kept open by a stream)"
			if info.OpenStreams == 0 {
				exp = info.ExpiresIn.Round(time.Millisecond).String()
			}
			e.reply(batonv1.Sessions_Describe_FullMethodName,
				"session:      %d\nlabel:        %s\nttl:          %v\nage:          %v\nexpires in:   %s\nopen streams: %d\n",
				info.ID, info.Label, info.TTL, info.Age.Round(time.Millisecond), exp, info.OpenStreams)
			return nil
		})
}

func sessionCloseCmd(e *env) *cobra.Command {
	return leaf("close ID", "Close a session, releasing everything it holds",
		`Ends session ID at once: its locks, permits, in-flight items and running tasks are
released, and its pending waits fail with ABORTED. Prints nothing.

--json prints the baton.v1.CloseSessionResponse (Sessions/Close): {}.`+
			exits("0 closed", "4 no such session"),
		`  baton session close "$SESSION"`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			id, err := sessionID(pos[0])
			if err != nil {
				return err
			}
			c, err := e.dial()
			if err != nil {
				return err
			}
			ctx, cancel := e.callCtx()
			defer cancel()
			if err := c.CloseSession(ctx, id); err != nil {
				return err
			}
			e.reply(batonv1.Sessions_Close_FullMethodName, "")
			return nil
		})
}
