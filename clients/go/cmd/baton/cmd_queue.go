package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	baton "github.com/baton/baton/clients/go"
)

func cmdQueue(e *env, args []string) error {
	if len(args) == 0 {
		return usageErr("usage: baton queue put|get|consume|ack|nack|join|purge|delete NAME ...")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "put":
		return queuePut(e, args)
	case "get":
		return queueGet(e, args)
	case "consume":
		return queueConsume(e, args)
	case "ack", "nack":
		return queueAckNack(e, sub, args)
	case "join", "purge", "delete":
		return queueSimple(e, sub, args)
	}
	return usageErr("usage: baton queue put|get|consume|ack|nack|join|purge|delete NAME ...: unknown subcommand %q", sub)
}

// queueOptionFlags adds the flags that declare a queue.
func queueOptionFlags(e *env, name string) (*flagSet, func() ([]baton.HandleOption, error)) {
	fs := &flagSet{e.newFlags(name)}
	order := fs.String("order", "", "declare the queue's order: fifo, lifo or priority")
	maxsize := fs.Uint("maxsize", 0, "declare the queue's maxsize")
	maxDeliveries := fs.Uint("max-deliveries", 0, "declare the deliveries after which an item is dead-lettered")
	return fs, func() ([]baton.HandleOption, error) {
		if *order == "" && *maxsize == 0 && *maxDeliveries == 0 {
			return nil, nil
		}
		o := baton.QueueOptions{MaxSize: uint32(*maxsize), MaxDeliveries: uint32(*maxDeliveries)}
		switch *order {
		case "", "fifo":
			o.Order = baton.OrderFIFO
		case "lifo":
			o.Order = baton.OrderLIFO
		case "priority":
			o.Order = baton.OrderPriority
		default:
			return nil, usageErr("--order must be fifo, lifo or priority, not %q", *order)
		}
		return []baton.HandleOption{baton.WithQueueOptions(o)}, nil
	}
}

func queuePut(e *env, args []string) error {
	fs, declare := queueOptionFlags(e, "queue put")
	priority := fs.Int64("priority", 0, "priority of the items (PRIORITY queues: lower first)")
	delay := fs.Duration("delay", 0, "make the items visible only after this long")
	try := fs.Bool("try", false, "do not wait for room: fail (exit 3) if the queue is full")
	pos, _, err := parse(fs.FlagSet, args)
	if err != nil {
		return err
	}
	if err := need(fs.FlagSet, pos, 1, -1, "NAME [ITEM...] (items from stdin lines if none)"); err != nil {
		return err
	}
	opts, err := declare()
	if err != nil {
		return err
	}
	texts := pos[1:]
	if len(texts) == 0 {
		sc := bufio.NewScanner(e.stdin)
		sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
		for sc.Scan() {
			texts = append(texts, sc.Text())
		}
		if err := sc.Err(); err != nil {
			return err
		}
		if len(texts) == 0 {
			return usageErr("no items (none as arguments, none on stdin)")
		}
	}
	items := make([]baton.Item, len(texts))
	for i, t := range texts {
		items[i] = baton.Item{Data: []byte(t), Priority: *priority, Delay: *delay}
	}
	c, err := e.dial()
	if err != nil {
		return err
	}
	q := c.Queue(pos[0], opts...)
	var res baton.PutResult
	if *try {
		ctx, cancel := e.callCtx()
		defer cancel()
		res, err = q.TryPut(ctx, items...)
	} else {
		ctx, cancel := e.waitCtx()
		defer cancel()
		res, err = q.Put(ctx, items...)
	}
	if err != nil {
		return err
	}
	ids := make([]string, len(res.IDs))
	for i, id := range res.IDs {
		ids[i] = u64(id)
	}
	e.print(map[string]any{"name": pos[0], "item_ids": ids, "size": res.Size}, "put %d (queue size %d)\n", len(ids), res.Size)
	return nil
}

// getOwner is who owns items got by the CLI: --session, else a lease of
// --visibility without session (the items come back after it unless
// acknowledged).
func (e *env) getOwner(visibility time.Duration) ([]baton.HandleOption, error) {
	if e.g.session != 0 {
		return e.ownerOpts(0, true)
	}
	if _, err := e.dial(); err != nil {
		return nil, err
	}
	return []baton.HandleOption{baton.WithLease(visibility), baton.WithoutSession()}, nil
}

func deliveryJSON(d *baton.Delivery) map[string]any {
	m := map[string]any{
		"receipt": u64(d.Receipt), "item_id": u64(d.ItemID), "data": base64.StdEncoding.EncodeToString(d.Data),
		"priority": d.Priority, "delivery_count": d.DeliveryCount, "age": jsonDur(d.Age),
	}
	if utf8.Valid(d.Data) {
		m["text"] = d.Text()
	}
	return m
}

func queueGet(e *env, args []string) error {
	fs, declare := queueOptionFlags(e, "queue get")
	max := fs.Int("max", 1, "take up to this many items")
	visibility := fs.Duration("visibility", time.Minute, "lease on the items: redelivered after this unless acknowledged")
	ack := fs.Bool("ack", false, "acknowledge the items at once (print only their payloads)")
	try := fs.Bool("try", false, "do not wait: fail (exit 3) if the queue is empty")
	dead := fs.Bool("dead-letters", false, "read the dead-letter list")
	pos, _, err := parse(fs.FlagSet, args)
	if err != nil {
		return err
	}
	if err := need(fs.FlagSet, pos, 1, 1, "NAME [--max N] [--visibility D] [--ack] [--try] [--dead-letters]"); err != nil {
		return err
	}
	opts, err := declare()
	if err != nil {
		return err
	}
	owner, err := e.getOwner(*visibility)
	if err != nil {
		return err
	}
	q := e.client.Queue(pos[0], append(opts, owner...)...)
	var ds []*baton.Delivery
	switch {
	case *dead:
		ctx, cancel := e.callCtx()
		defer cancel()
		ds, err = q.DeadLetters(ctx, *max)
		if err == nil && len(ds) == 0 {
			return &exitError{exitTimeout, fmt.Sprintf("queue %s has no dead letters", pos[0])}
		}
	case *try:
		ctx, cancel := e.callCtx()
		defer cancel()
		ds, err = q.TryGetN(ctx, *max)
	default:
		ctx, cancel := e.waitCtx()
		defer cancel()
		ds, err = q.GetN(ctx, *max)
	}
	if err != nil {
		return err
	}
	if *ack {
		ctx, cancel := e.callCtx()
		defer cancel()
		receipts := make([]uint64, len(ds))
		for i, d := range ds {
			receipts[i] = d.Receipt
		}
		if _, err := q.Ack(ctx, receipts...); err != nil {
			return err
		}
	}
	items := make([]map[string]any, len(ds))
	for i, d := range ds {
		items[i] = deliveryJSON(d)
	}
	if e.g.json {
		e.print(map[string]any{"name": pos[0], "items": items}, "")
		return nil
	}
	for _, d := range ds {
		if *ack {
			fmt.Fprintln(e.stdout, d.Text())
		} else {
			fmt.Fprintf(e.stdout, "%d\t%s\n", d.Receipt, d.Text())
		}
	}
	return nil
}

func queueConsume(e *env, args []string) error {
	fs := &flagSet{e.newFlags("queue consume")}
	count := fs.Int("count", 0, "stop after this many items (default: until interrupted)")
	prefetch := fs.Int("prefetch", 16, "unacknowledged items the stream may hold")
	visibility := fs.Duration("visibility", time.Minute, "lease on the items in flight")
	pos, _, err := parse(fs.FlagSet, args)
	if err != nil {
		return err
	}
	if err := need(fs.FlagSet, pos, 1, 1, "NAME [--count N] [--prefetch N] [--visibility D]"); err != nil {
		return err
	}
	owner, err := e.getOwner(*visibility)
	if err != nil {
		return err
	}
	q := e.client.Queue(pos[0], owner...)
	ctx, cancel := e.waitCtx()
	defer cancel()
	n := 0
	for d, err := range q.Consume(ctx, *prefetch) {
		if err != nil {
			return err
		}
		e.print(deliveryJSON(d), "%s\n", d.Text())
		actx, acancel := e.callCtx()
		err := d.Ack(actx)
		acancel()
		if err != nil {
			return err
		}
		n++
		if *count > 0 && n >= *count {
			break
		}
	}
	return nil
}

func queueAckNack(e *env, sub string, args []string) error {
	fs := &flagSet{e.newFlags("queue " + sub)}
	delay := fs.Duration("delay", 0, "nack: make the items visible again only after this long")
	pos, _, err := parse(fs.FlagSet, args)
	if err != nil {
		return err
	}
	if err := need(fs.FlagSet, pos, 2, -1, "NAME RECEIPT..."); err != nil {
		return err
	}
	var receipts []uint64
	for _, r := range pos[1:] {
		v, err := strconv.ParseUint(r, 10, 64)
		if err != nil {
			return usageErr("bad receipt %q", r)
		}
		receipts = append(receipts, v)
	}
	c, err := e.dial()
	if err != nil {
		return err
	}
	ctx, cancel := e.callCtx()
	defer cancel()
	q := c.Queue(pos[0])
	if sub == "ack" {
		res, err := q.Ack(ctx, receipts...)
		if err != nil {
			return err
		}
		e.print(map[string]any{"name": pos[0], "acked": res.Acked, "unfinished": u64(res.Unfinished)},
			"acked %d (unfinished %d)\n", res.Acked, res.Unfinished)
		return nil
	}
	res, err := q.Nack(ctx, *delay, receipts...)
	if err != nil {
		return err
	}
	e.print(map[string]any{"name": pos[0], "returned": res.Returned, "dead_lettered": res.DeadLettered},
		"returned %d (dead-lettered %d)\n", res.Returned, res.DeadLettered)
	return nil
}

func queueSimple(e *env, sub string, args []string) error {
	fs := &flagSet{e.newFlags("queue " + sub)}
	dead := fs.Bool("dead-letters", false, "purge: drop the dead letters instead")
	pos, _, err := parse(fs.FlagSet, args)
	if err != nil {
		return err
	}
	if err := need(fs.FlagSet, pos, 1, 1, "NAME"); err != nil {
		return err
	}
	c, err := e.dial()
	if err != nil {
		return err
	}
	q := c.Queue(pos[0])
	switch sub {
	case "join":
		ctx, cancel := e.waitCtx()
		defer cancel()
		if err := q.Join(ctx); err != nil {
			return err
		}
		e.print(map[string]any{"name": pos[0], "joined": true}, "")
	case "purge":
		ctx, cancel := e.callCtx()
		defer cancel()
		var n int
		if *dead {
			n, err = q.PurgeDeadLetters(ctx)
		} else {
			n, err = q.Purge(ctx)
		}
		if err != nil {
			return err
		}
		e.print(map[string]any{"name": pos[0], "purged": n}, "purged %d\n", n)
	case "delete":
		ctx, cancel := e.callCtx()
		defer cancel()
		ok, err := q.Delete(ctx)
		if err != nil {
			return err
		}
		if !ok {
			return &exitError{exitNotFound, fmt.Sprintf("no queue %s", pos[0])}
		}
		e.print(map[string]any{"name": pos[0], "deleted": true}, "")
	}
	return nil
}
