package raftd

import (
	"bufio"
	"net"
	"sync"
	"time"

	"github.com/baton/baton/raft/wire"
)

// outbox queues frames for batond and writes them on its own goroutine, so a
// slow batond never stalls the raft loop (which would miss heartbeats).
// Frames go out in the order they were pushed. The queue is unbounded:
// batond is expected to keep up; if it stops reading, memory grows until it
// reads again or closes the socket (and then baton-raftd exits).
type outbox struct {
	conn net.Conn

	mu      sync.Mutex
	frames  [][]byte
	writing bool // the writer holds frames taken from the queue
	signal  chan struct{}
	onError func(error)
}

func newOutbox(conn net.Conn, onError func(error)) *outbox {
	o := &outbox{conn: conn, signal: make(chan struct{}, 1), onError: onError}
	go o.run()
	return o
}

// push queues m. Thread-safe.
func (o *outbox) push(m wire.Message) {
	f := wire.AppendFrame(nil, m)
	o.mu.Lock()
	o.frames = append(o.frames, f)
	o.mu.Unlock()
	select {
	case o.signal <- struct{}{}:
	default:
	}
}

func (o *outbox) run() {
	w := bufio.NewWriterSize(o.conn, 256<<10)
	for range o.signal {
		for {
			o.mu.Lock()
			batch := o.frames
			o.frames = nil
			o.writing = len(batch) > 0
			o.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			for _, f := range batch {
				if _, err := w.Write(f); err != nil {
					o.onError(err)
					return
				}
			}
			if err := w.Flush(); err != nil {
				o.onError(err)
				return
			}
		}
		o.mu.Lock()
		o.writing = false
		o.mu.Unlock()
	}
}

// waitEmpty waits until everything pushed so far was written, or timeout.
func (o *outbox) waitEmpty(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		o.mu.Lock()
		done := len(o.frames) == 0 && !o.writing
		o.mu.Unlock()
		if done {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
