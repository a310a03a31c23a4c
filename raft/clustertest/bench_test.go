package clustertest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/baton/baton/raft/wire"
)

// BenchmarkCommits16InFlight measures commits/s on a 3-node loopback cluster
// with 16 proposals of 128 bytes in flight on the leader: the rate batond
// sees when its sequencer keeps 16 batches outstanding. Run:
//
//	go test ./clustertest -run '^$' -bench Commits16 -benchtime 20000x
func BenchmarkCommits16InFlight(b *testing.B) {
	c := newCluster(b, 3)
	l := c.leader()
	payload := strings.Repeat("x", 128)
	window := 16
	if s := os.Getenv("RAFTD_BENCH_WINDOW"); s != "" { // e.g. 64, to see how batching scales
		window, _ = strconv.Atoi(s)
	}
	b.ResetTimer()
	start := time.Now()
	inflight, sent, done := 0, 0, 0
	deadline := time.After(5 * time.Minute)
	for done < b.N {
		for inflight < window && sent < b.N {
			cookieSeq++
			l.b.send(&wire.Propose{Cookie: cookieSeq, Data: []byte(payload)})
			sent++
			inflight++
		}
		select {
		case o := <-l.b.outcomes:
			if !o.committed {
				b.Fatalf("proposal rejected: %+v", *o.rejected)
			}
			inflight--
			done++
		case <-deadline:
			b.Fatalf("%d of %d committed in 5 minutes", done, b.N)
		}
	}
	el := time.Since(start)
	b.StopTimer()
	rate := float64(b.N) / el.Seconds()
	b.ReportMetric(rate, "commits/s")
	if b.N >= 1000 {
		fmt.Printf("\nBENCH commits=%d window=%d elapsed=%v rate=%.0f commits/s\n", b.N, window, el.Round(time.Millisecond), rate)
	}
}
