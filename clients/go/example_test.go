package baton_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	baton "github.com/baton/baton/clients/go"
)

// These examples run against the test server (addr), like the README's;
// dialOpts are none, or TLS and a token when the suite runs with
// BATON_TEST_SECURE=1.

func ExampleMutex_Lock() {
	ctx := context.Background()
	c, err := baton.Dial(ctx, addr, dialOpts...)
	if err != nil {
		panic(err)
	}
	defer c.Close()

	m := c.Mutex("examples/nightly-migration")
	held, err := m.Lock(ctx)
	if err != nil {
		panic(err)
	}
	defer held.Unlock(ctx)
	fmt.Println("holding it, fence > 0:", held.Fence() > 0)

	// Anyone else waits, or gives up:
	other, _ := baton.Dial(ctx, addr, dialOpts...)
	defer other.Close()
	_, err = other.Mutex("examples/nightly-migration").TryLock(ctx)
	fmt.Println("second holder would block:", errors.Is(err, baton.ErrWouldBlock))
	// Output:
	// holding it, fence > 0: true
	// second holder would block: true
}

func ExampleQueue_Consume() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := baton.Dial(ctx, addr, dialOpts...)
	if err != nil {
		panic(err)
	}
	defer c.Close()

	q := c.Queue("examples/jobs")
	if _, err := q.Put(ctx, baton.TextItem("resize 1.png"), baton.TextItem("resize 2.png")); err != nil {
		panic(err)
	}
	n := 0
	for d, err := range q.Consume(ctx, 16) {
		if err != nil {
			panic(err)
		}
		fmt.Println(d.Text())
		if err := d.Ack(ctx); err != nil {
			panic(err)
		}
		if n++; n == 2 {
			break
		}
	}
	// Output:
	// resize 1.png
	// resize 2.png
}

func ExampleTaskQueue_Work() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := baton.Dial(ctx, addr, dialOpts...)
	if err != nil {
		panic(err)
	}
	defer c.Close()

	tasks := c.Tasks("examples/upper")
	task, err := tasks.Submit(ctx, []byte("hello"))
	if err != nil {
		panic(err)
	}
	workCtx, stop := context.WithCancel(ctx)
	defer stop()
	go tasks.Work(workCtx, func(ctx context.Context, job *baton.Job) ([]byte, error) {
		return []byte(fmt.Sprintf("%s, attempt %d", job.Payload, job.Attempt)), nil
	}, baton.WorkOptions{})

	result, err := task.Await(ctx)
	fmt.Println(string(result), err)
	// Output: hello, attempt 1 <nil>
}
