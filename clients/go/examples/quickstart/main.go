// Command quickstart shows the Go client on every-day work: a lock with a
// fencing token, a work queue with a worker loop, and a future that tells
// when the batch is done.
//
//	go run ./examples/quickstart --addr 127.0.0.1:7411
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	baton "github.com/baton/baton/clients/go"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7411", "Baton server")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, *addr, "quickstart", os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run does the walk-through under names starting with prefix; opts are more
// Dial options (the test's: TLS and a token when it runs with
// BATON_TEST_SECURE=1).
func run(ctx context.Context, addr, prefix string, out io.Writer, opts ...baton.Option) error {
	c, err := baton.Dial(ctx, addr, opts...)
	if err != nil {
		return err
	}
	defer c.Close()

	// 1. Only one process migrates at a time; the fencing token lets the
	// database reject a stale holder.
	held, err := c.Mutex(prefix + "/migration").Lock(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "migrating with fencing token > 0: %v\n", held.Fence() > 0)
	if err := held.Unlock(ctx); err != nil {
		return err
	}

	// 2. Submit three tasks and run a worker loop until they are done.
	tasks := c.Tasks(prefix + "/thumbnails")
	var submitted []*baton.Task
	for _, img := range []string{"a.png", "b.png", "c.png"} {
		t, err := tasks.Submit(ctx, []byte(img), baton.MaxAttempts(3))
		if err != nil {
			return err
		}
		submitted = append(submitted, t)
	}
	workCtx, stopWorker := context.WithCancel(ctx)
	defer stopWorker()
	go tasks.Work(workCtx, func(ctx context.Context, job *baton.Job) ([]byte, error) {
		return []byte("thumb-" + string(job.Payload)), nil
	}, baton.WorkOptions{})
	done, _, err := tasks.Wait(ctx, baton.AllCompleted, submitted...)
	if err != nil {
		return err
	}
	var results []string
	for _, t := range submitted {
		for _, o := range done {
			if o.TaskID == t.ID() {
				results = append(results, string(o.Result))
			}
		}
	}
	fmt.Fprintf(out, "results: %s\n", strings.Join(results, ", "))

	// 3. Tell whoever waits that the batch is done.
	batch := c.Future(prefix + "/batch-done")
	if _, err := batch.Set(ctx, []byte(fmt.Sprintf("%d thumbnails", len(results)))); err != nil {
		return err
	}
	v, err := batch.Await(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "batch: %s\n", v)
	return nil
}
