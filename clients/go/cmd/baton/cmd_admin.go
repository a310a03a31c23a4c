package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	baton "github.com/baton/baton/clients/go"
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

// ls [PREFIX] [--kind K]
func cmdList(e *env, args []string) error {
	fs := e.newFlags("ls")
	kind := fs.String("kind", "", "only this kind: lock, semaphore, event, queue, future, barrier, timer, tasks")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := need(fs, pos, 0, 1, "[PREFIX] [--kind K]"); err != nil {
		return err
	}
	k := baton.KindAny
	if *kind != "" {
		var ok bool
		if k, ok = kinds[*kind]; !ok {
			return usageErr("unknown kind %q", *kind)
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
	rs, err := c.List(ctx, prefix, k)
	if err != nil {
		return err
	}
	if e.g.json {
		out := make([]map[string]any, len(rs))
		for i, r := range rs {
			out[i] = map[string]any{"name": r.Name, "kind": kindName(r.Kind), "holders": r.Holders, "waiters": r.Waiters}
		}
		e.print(map[string]any{"resources": out}, "")
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
}

// describe NAME
func cmdDescribe(e *env, args []string) error {
	fs := e.newFlags("describe")
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
	info, err := c.Describe(ctx, pos[0])
	if err != nil {
		return err
	}
	if e.g.json {
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(info)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, string(b))
		return nil
	}
	fmt.Fprint(e.stdout, describeText(info))
	return nil
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

// session open|keepalive|describe|close
func cmdSession(e *env, args []string) error {
	if len(args) == 0 {
		return usageErr("usage: baton session open|keepalive|describe|close ...")
	}
	sub := args[0]
	fs := e.newFlags("session " + sub)
	ttl := fs.Duration("ttl", time.Minute, "open: the session's TTL")
	lbl := fs.String("label", "", "open: a label shown by describe")
	follow := fs.Bool("follow", false, "keepalive: keep the session alive until interrupted (or --timeout)")
	pos, _, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if sub == "open" {
		if err := need(fs, pos, 0, 0, "open [--ttl D] [--label L]"); err != nil {
			return err
		}
		c, err := e.dial()
		if err != nil {
			return err
		}
		if *lbl == "" {
			*lbl = label()
		}
		ctx, cancel := e.callCtx()
		defer cancel()
		s, err := c.NewSession(ctx, baton.WithSessionTTL(*ttl), baton.WithSessionLabel(*lbl))
		if err != nil {
			return err
		}
		s.Orphan() // it outlives baton: kept alive by 'session keepalive' or other clients
		e.print(map[string]any{"session_id": u64(s.ID()), "ttl": jsonDur(s.TTL())}, "%d\n", s.ID())
		return nil
	}
	switch sub {
	case "keepalive", "describe", "close":
	default:
		return usageErr("usage: baton session open|keepalive|describe|close: unknown subcommand %q", sub)
	}
	if err := need(fs, pos, 1, 1, sub+" ID"); err != nil {
		return err
	}
	id, perr := strconv.ParseUint(pos[0], 10, 64)
	if perr != nil {
		return usageErr("bad session id %q", pos[0])
	}
	c, err := e.dial()
	if err != nil {
		return err
	}
	switch sub {
	case "close":
		ctx, cancel := e.callCtx()
		defer cancel()
		if err := c.CloseSession(ctx, id); err != nil {
			return err
		}
		e.print(map[string]any{"session_id": u64(id), "closed": true}, "")
	case "describe":
		ctx, cancel := e.callCtx()
		defer cancel()
		info, err := c.DescribeSession(ctx, id)
		if err != nil {
			return err
		}
		obj := map[string]any{"session_id": u64(info.ID), "label": info.Label, "ttl": jsonDur(info.TTL),
			"age": jsonDur(info.Age), "open_streams": info.OpenStreams}
		exp := "- (kept open by a stream)"
		if info.OpenStreams == 0 {
			obj["expires_in"] = jsonDur(info.ExpiresIn)
			exp = info.ExpiresIn.Round(time.Millisecond).String()
		}
		e.print(obj, "session:      %d\nlabel:        %s\nttl:          %v\nage:          %v\nexpires in:   %s\nopen streams: %d\n",
			info.ID, info.Label, info.TTL, info.Age.Round(time.Millisecond), exp, info.OpenStreams)
	case "keepalive":
		if !*follow {
			ctx, cancel := e.callCtx()
			defer cancel()
			left, err := c.KeepAliveSession(ctx, id)
			if err != nil {
				return err
			}
			e.print(map[string]any{"session_id": u64(id), "expires_in": jsonDur(left)}, "expires in %v\n", left.Round(time.Millisecond))
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
	}
	return nil
}
