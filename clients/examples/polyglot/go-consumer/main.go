// Command go-consumer is the Go side of the polyglot example: it waits on the
// event <prefix>/open (set by the Python producer), then takes the orders
// from the queue <prefix>/orders one by one, acknowledging each, and
// publishes their total as the future <prefix>/total.
//
//	go run . --addr 127.0.0.1:7411 --prefix examples/polyglot/demo --count 20
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"time"

	baton "github.com/baton/baton/clients/go"
)

// order is what the Python producer puts, as JSON.
type order struct {
	ID          int    `json:"id"`
	Item        string `json:"item"`
	AmountCents int    `json:"amount_cents"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:7411", "Baton server")
	prefix := flag.String("prefix", "examples/polyglot/demo", "prefix of the resource names")
	count := flag.Int("count", 20, "orders to take")
	flag.Parse()
	log.SetFlags(0)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, *addr, *prefix, *count); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr, prefix string, count int) error {
	c, err := baton.Dial(ctx, addr, baton.WithSessionLabel("polyglot go-consumer"))
	if err != nil {
		return err
	}
	defer c.Close() // ends the session: anything still in flight goes back to the queue

	fmt.Println("waiting for the shop to open")
	if err := c.Event(prefix + "/open").Wait(ctx); err != nil {
		return err
	}
	fmt.Println("open: taking orders")

	orders := c.Queue(prefix + "/orders")
	total := 0
	for i := 0; i < count; i++ {
		d, err := orders.Get(ctx) // in flight, owned by this client's session, until acknowledged
		if err != nil {
			return err
		}
		var o order
		if err := json.Unmarshal(d.Data, &o); err != nil {
			d.Nack(ctx, 0)
			return fmt.Errorf("order %q: %w", d.Text(), err)
		}
		total += o.AmountCents
		if err := d.Ack(ctx); err != nil {
			return err
		}
		fmt.Printf("order %d: %s, %d cents\n", o.ID, o.Item, o.AmountCents)
	}
	woken, err := c.Future(prefix+"/total").Set(ctx, []byte(strconv.Itoa(total)))
	if err != nil {
		return err
	}
	fmt.Printf("total %d cents over %d orders (published; %d waiting for it)\n", total, count, woken)
	return nil
}
