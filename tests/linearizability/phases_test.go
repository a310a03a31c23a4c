package linearizability

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// within runs f and waits for it at most limit. Past the limit it writes
// every goroutine's stack to dir, fails the test naming the phase and the
// test's own goroutines that are still busy, and returns false; f goes on
// in the background (what it writes must then be left alone).
func within(t *testing.T, dir, phase string, limit time.Duration, f func()) bool {
	t.Helper()
	done := make(chan struct{})
	start := time.Now()
	go func() { defer close(done); f() }()
	select {
	case <-done:
		t.Logf("%s: %.1fs", phase, time.Since(start).Seconds())
		return true
	case <-time.After(limit):
	}
	stacks := allStacks()
	path := filepath.Join(dir, "stacks-"+strings.ReplaceAll(phase, " ", "-")+".txt")
	if err := os.WriteFile(path, stacks, 0o644); err != nil {
		path = "(not written: " + err.Error() + ")"
	}
	t.Errorf("%s did not finish within %s; every goroutine's stack: %s\nthe test's goroutines:\n%s", phase, limit, path, ours(stacks, 12000))
	return false
}

func allStacks() []byte {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

// ours keeps the goroutines with a frame of this package (besides this
// function's own), at most limit bytes.
func ours(stacks []byte, limit int) string {
	var b strings.Builder
	for _, g := range strings.Split(string(stacks), "\n\n") {
		if strings.Contains(g, "tests/linearizability.") && !strings.Contains(g, "linearizability.allStacks") {
			if b.Len()+len(g) > limit {
				b.WriteString("…\n")
				break
			}
			b.WriteString(g)
			b.WriteString("\n\n")
		}
	}
	return b.String()
}
