package baton

// Test hooks (compiled into the package's tests only).

// StreamBreaks is how many welcomed session streams of c broke (or were
// dropped); 0 on the unary transport.
func StreamBreaks(c *Client) int64 {
	if c.stream == nil {
		return 0
	}
	return c.stream.breaks.Load()
}

// ConsumerStats are a Get-loop consumer's counters.
type ConsumerStats struct {
	// Rode: acks that rode on a Get; Flushed: acks sent by Ack;
	// IgnoredGets: Gets whose acks the server ignored.
	Rode, Flushed, IgnoredGets int64
}

// WatchConsumers calls f with a function reading the counters of every
// Get-loop consumer made from now on, until the returned stop is called.
func WatchConsumers(f func(stats func() ConsumerStats)) (stop func()) {
	consumerHook = func(c *consumer) {
		f(func() ConsumerStats {
			return ConsumerStats{Rode: c.rode.Load(), Flushed: c.flushed.Load(), IgnoredGets: c.ignored.Load()}
		})
	}
	return func() { consumerHook = nil }
}

// StreamWrites is how many messages c wrote on its session streams after
// the hellos, and how many operations they carried.
func StreamWrites(c *Client) (messages, ops int64) {
	if c.stream == nil {
		return 0, 0
	}
	return c.stream.msgs.Load(), c.stream.opsSent.Load()
}
