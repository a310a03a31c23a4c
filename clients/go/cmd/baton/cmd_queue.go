package main

import (
	"bufio"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	baton "github.com/baton/baton/clients/go"
	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
)

func queueCmd(e *env) *cobra.Command {
	return group("queue", "Queues: put, get, consume, acknowledge, join, purge, delete",
		`A queue is asyncio.Queue shared by name, with acknowledgements: an item got is in
flight, owned by a lease (--visibility) or a session, until it is acknowledged (ack)
or returned (nack); if its owner goes away first it is delivered again. A queue's
order (fifo, lifo, priority), maxsize and max deliveries (after which an item is
dead-lettered) are declared by the first put or get that gives them.`,
		`  baton queue put jobs "resize 1.png" "resize 2.png"
  baton queue get jobs --ack
  baton queue consume jobs --count 10`,
		queuePutCmd(e), queueGetCmd(e), queueConsumeCmd(e), queueAckCmd(e, "ack"), queueAckCmd(e, "nack"),
		queueJoinCmd(e), queuePurgeCmd(e), queueDeleteCmd(e))
}

// queueOptionFlags adds the flags that declare a queue; the function returns
// the handle options they make.
func queueOptionFlags(cmd *cobra.Command) func() ([]baton.HandleOption, error) {
	order := cmd.Flags().String("order", "", "declare the queue's order: fifo, lifo or priority")
	maxsize := cmd.Flags().Uint32("maxsize", 0, "declare the queue's maxsize")
	maxDeliveries := cmd.Flags().Uint32("max-deliveries", 0, "declare the deliveries after which an item is dead-lettered")
	return func() ([]baton.HandleOption, error) {
		if *order == "" && *maxsize == 0 && *maxDeliveries == 0 {
			return nil, nil
		}
		o := baton.QueueOptions{MaxSize: *maxsize, MaxDeliveries: *maxDeliveries}
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

func queuePutCmd(e *env) *cobra.Command {
	var priority int64
	var delay time.Duration
	var try bool
	var declare func() ([]baton.HandleOption, error)
	cmd := leaf("put NAME [ITEM...]", "Put items into a queue (from the arguments, else one per line of stdin)",
		`Puts the ITEMs into queue NAME in one call, or, without ITEMs, every line of stdin.
Waits while the queue is full (--try: fail at once). Prints how many were put and the
queue's size. --priority orders items in a priority queue (lower first), --delay makes
them visible only later; --order, --maxsize and --max-deliveries declare the queue.

--json prints the baton.v1.PutResponse (Queues/Put).`+
			exits("0 put", "3 full (--try) or still full after --timeout", "5 declared otherwise, or NAME is another kind", "130 interrupted"),
		`  baton queue put jobs "resize 1.png" "resize 2.png"
  ls *.png | baton queue put jobs --order priority --priority 5
  baton queue put reminders "call back" --delay 1h`,
		1, -1, func(cmd *cobra.Command, pos []string) error {
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
				items[i] = baton.Item{Data: []byte(t), Priority: priority, Delay: delay}
			}
			c, err := e.dial()
			if err != nil {
				return err
			}
			q := c.Queue(pos[0], opts...)
			var res baton.PutResult
			if try {
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
			e.reply(batonv1.Queues_Put_FullMethodName, "put %d (queue size %d)\n", len(res.IDs), res.Size)
			return nil
		})
	declare = queueOptionFlags(cmd)
	cmd.Flags().Int64Var(&priority, "priority", 0, "priority of the items (priority queues: lower first)")
	cmd.Flags().DurationVar(&delay, "delay", 0, "make the items visible only after this long")
	cmd.Flags().BoolVar(&try, "try", false, "do not wait for room: fail (exit 3) if the queue is full")
	cmd.ValidArgsFunction = e.completeNames(baton.KindQueue)
	return cmd
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

func queueGetCmd(e *env) *cobra.Command {
	var max int
	var visibility time.Duration
	var ack, try, dead bool
	var declare func() ([]baton.HandleOption, error)
	cmd := leaf("get NAME [--max N] [--visibility D] [--ack] [--try] [--dead-letters]",
		"Take items from a queue: print RECEIPT<TAB>TEXT lines (just the text with --ack)",
		`Takes up to --max items from queue NAME, waiting while it is empty (--try: fail at
once), and prints one "RECEIPT<TAB>TEXT" line per item. The items are in flight for
--visibility (default 1m; or owned by --session) and come back unless acknowledged
with 'queue ack NAME RECEIPT...' first. --ack acknowledges them at once and prints
just their text. --dead-letters reads the items dead-lettered after --max-deliveries.

--json prints the baton.v1.GetResponse (Queues/Get).`+
			exits("0 got", "3 empty (--try), nothing within --timeout, or no dead letters",
				"5 declared otherwise, deleted while waiting, or NAME is another kind", "130 interrupted"),
		`  baton queue get jobs --ack
  baton queue get jobs --max 10 --visibility 5m
  baton queue get jobs --dead-letters --max 100 --json`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			opts, err := declare()
			if err != nil {
				return err
			}
			owner, err := e.getOwner(visibility)
			if err != nil {
				return err
			}
			q := e.client.Queue(pos[0], append(opts, owner...)...)
			var ds []*baton.Delivery
			switch {
			case dead:
				ctx, cancel := e.callCtx()
				defer cancel()
				ds, err = q.DeadLetters(ctx, max)
				if err == nil && len(ds) == 0 {
					e.reply(batonv1.Queues_Get_FullMethodName, "")
					return &exitError{exitTimeout, fmt.Sprintf("queue %s has no dead letters", pos[0])}
				}
			case try:
				ctx, cancel := e.callCtx()
				defer cancel()
				ds, err = q.TryGetN(ctx, max)
			default:
				ctx, cancel := e.waitCtx()
				defer cancel()
				ds, err = q.GetN(ctx, max)
			}
			if err != nil {
				return err
			}
			got := e.rec.lastReply(batonv1.Queues_Get_FullMethodName)
			if ack {
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
			if e.g.json {
				e.printMsg(got)
				return nil
			}
			for _, d := range ds {
				if ack {
					fmt.Fprintln(e.stdout, d.Text())
				} else {
					fmt.Fprintf(e.stdout, "%d\t%s\n", d.Receipt, d.Text())
				}
			}
			return nil
		})
	declare = queueOptionFlags(cmd)
	cmd.Flags().IntVar(&max, "max", 1, "take up to this many items")
	cmd.Flags().DurationVar(&visibility, "visibility", time.Minute, "lease on the items: delivered again after this unless acknowledged")
	cmd.Flags().BoolVar(&ack, "ack", false, "acknowledge the items at once (print only their text)")
	cmd.Flags().BoolVar(&try, "try", false, "do not wait: fail (exit 3) if the queue is empty")
	cmd.Flags().BoolVar(&dead, "dead-letters", false, "read the dead-letter list")
	cmd.ValidArgsFunction = e.completeNames(baton.KindQueue)
	return cmd
}

func queueConsumeCmd(e *env) *cobra.Command {
	var count, prefetch int
	var visibility time.Duration
	cmd := leaf("consume NAME [--count N] [--prefetch N] [--visibility D]",
		"Stream items from a queue: print and acknowledge each as it comes",
		`Streams the items of queue NAME (Queues/Consume), printing each one's text and
acknowledging it, until --count items, --timeout (exit 3) or an interrupt (exit 130).
The server keeps up to --prefetch unacknowledged items on the way.

--json prints each item as a baton.v1.Delivery (from the stream's ConsumeResponse),
one per line.`+
			exits("0 --count items consumed", "3 --timeout passed", "5 the queue was deleted, or NAME is another kind", "130 interrupted"),
		`  baton queue consume jobs --count 10
  baton queue consume jobs --json | jq -r .text`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			owner, err := e.getOwner(visibility)
			if err != nil {
				return err
			}
			q := e.client.Queue(pos[0], owner...)
			ctx, cancel := e.waitCtx()
			defer cancel()
			n := 0
			for d, err := range q.Consume(ctx, prefetch) {
				if err != nil {
					return err
				}
				if e.g.json {
					resp, _ := e.rec.lastReply(batonv1.Queues_Consume_FullMethodName).(*batonv1.ConsumeResponse)
					for _, it := range resp.GetItems() {
						if it.GetReceipt() == d.Receipt {
							e.printMsg(it)
						}
					}
				} else {
					fmt.Fprintf(e.stdout, "%s\n", d.Text())
				}
				actx, acancel := e.callCtx()
				err := d.Ack(actx)
				acancel()
				if err != nil {
					return err
				}
				n++
				if count > 0 && n >= count {
					break
				}
			}
			return nil
		})
	cmd.Flags().IntVar(&count, "count", 0, "stop after this many items (default: until interrupted or --timeout)")
	cmd.Flags().IntVar(&prefetch, "prefetch", 16, "unacknowledged items the stream may hold")
	cmd.Flags().DurationVar(&visibility, "visibility", time.Minute, "lease on the items in flight")
	cmd.ValidArgsFunction = e.completeNames(baton.KindQueue)
	return cmd
}

func queueAckCmd(e *env, sub string) *cobra.Command {
	var delay time.Duration
	short, long := "Acknowledge items got with 'queue get': they are done",
		`Acknowledges the in-flight items of queue NAME with these receipts (as 'queue get'
printed them): they are finished and gone. Prints how many, and how many items of the
queue are unfinished ('queue join' waits for none).

--json prints the baton.v1.AckResponse (Queues/Ack).`
	if sub == "nack" {
		short, long = "Return items got with 'queue get' to the queue",
			`Returns the in-flight items of queue NAME with these receipts to the head of the
queue (or, with --delay, makes them visible again after it). Counts as a delivery:
after --max-deliveries an item is dead-lettered instead. Prints how many were
returned and dead-lettered.

--json prints the baton.v1.NackResponse (Queues/Nack).`
	}
	cmd := leaf(sub+" NAME RECEIPT...", short,
		long+exits("0 done", "5 a receipt is not in flight any more (acknowledged, or its lease ran out)"),
		"  baton queue "+sub+" jobs 17 18",
		2, -1, func(cmd *cobra.Command, pos []string) error {
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
				e.reply(batonv1.Queues_Ack_FullMethodName, "acked %d (unfinished %d)\n", res.Acked, res.Unfinished)
				return nil
			}
			res, err := q.Nack(ctx, delay, receipts...)
			if err != nil {
				return err
			}
			e.reply(batonv1.Queues_Nack_FullMethodName, "returned %d (dead-lettered %d)\n", res.Returned, res.DeadLettered)
			return nil
		})
	if sub == "nack" {
		cmd.Flags().DurationVar(&delay, "delay", 0, "make the items visible again only after this long")
	}
	cmd.ValidArgsFunction = e.completeNames(baton.KindQueue)
	return cmd
}

func queueJoinCmd(e *env) *cobra.Command {
	cmd := leaf("join NAME", "Wait until every item put into a queue is acknowledged",
		`Waits until every item ever put into queue NAME has been acknowledged or
dead-lettered (asyncio's Queue.join); returns at once for an unknown or empty queue.
Prints nothing.

--json prints the baton.v1.JoinResponse (Queues/Join).`+
			exits("0 joined", "3 not within --timeout", "5 deleted while waiting, or NAME is another kind", "130 interrupted"),
		`  baton queue join jobs --timeout 1h && echo "all jobs done"`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			c, err := e.dial()
			if err != nil {
				return err
			}
			ctx, cancel := e.waitCtx()
			defer cancel()
			if err := c.Queue(pos[0]).Join(ctx); err != nil {
				return err
			}
			e.reply(batonv1.Queues_Join_FullMethodName, "")
			return nil
		})
	cmd.ValidArgsFunction = e.completeNames(baton.KindQueue)
	return cmd
}

func queuePurgeCmd(e *env) *cobra.Command {
	var dead bool
	cmd := leaf("purge NAME [--dead-letters]", "Drop the queued items (or the dead letters) of a queue",
		`Removes every queued item of queue NAME (not those in flight), or with
--dead-letters its dead letters; prints how many. Blocked putters may then proceed.

--json prints the baton.v1.PurgeResponse (Queues/Purge).`+exits("0 purged", "5 NAME is another kind"),
		`  baton queue purge jobs
  baton queue purge jobs --dead-letters`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			c, err := e.dial()
			if err != nil {
				return err
			}
			ctx, cancel := e.callCtx()
			defer cancel()
			q := c.Queue(pos[0])
			var n int
			if dead {
				n, err = q.PurgeDeadLetters(ctx)
			} else {
				n, err = q.Purge(ctx)
			}
			if err != nil {
				return err
			}
			e.reply(batonv1.Queues_Purge_FullMethodName, "purged %d\n", n)
			return nil
		})
	cmd.Flags().BoolVar(&dead, "dead-letters", false, "drop the dead letters instead")
	cmd.ValidArgsFunction = e.completeNames(baton.KindQueue)
	return cmd
}

func queueDeleteCmd(e *env) *cobra.Command {
	cmd := leaf("delete NAME", "Delete a queue with its items, in-flight items and dead letters",
		`Deletes queue NAME: its items, in-flight items and dead letters are dropped and every
pending put, get, join and consume on it fails (exit 5). Prints nothing.

--json prints the baton.v1.DeleteQueueResponse (Queues/Delete), also when there was
none to delete.`+exits("0 deleted", "4 there is no such queue", "5 NAME is another kind"),
		`  baton queue delete jobs`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			c, err := e.dial()
			if err != nil {
				return err
			}
			ctx, cancel := e.callCtx()
			defer cancel()
			ok, err := c.Queue(pos[0]).Delete(ctx)
			if err != nil {
				return err
			}
			e.reply(batonv1.Queues_Delete_FullMethodName, "")
			if !ok {
				return &exitError{exitNotFound, fmt.Sprintf("no queue %s", pos[0])}
			}
			return nil
		})
	cmd.ValidArgsFunction = e.completeNames(baton.KindQueue)
	return cmd
}
