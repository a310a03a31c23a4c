// Package linearizability checks, with porcupine, that the lock, semaphore
// and queue histories a 3-node Baton cluster gives its clients while its
// leader is killed (SIGKILL) every few seconds are linearizable. See
// README.md.
package linearizability

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

const (
	lockClients  = 3
	semClients   = 4
	queueClients = 3
)

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 {
		t.Fatalf("%s=%q: want a positive number of seconds", name, v)
	}
	return time.Duration(f * float64(time.Second))
}

// requireBatond returns $BATOND, or skips the test saying why it cannot run.
func requireBatond(t *testing.T) string {
	p := os.Getenv("BATOND")
	if p == "" {
		t.Skip("BATOND is not set: set it to a built batond (e.g. build/service/batond), or run tests/linearizability/test.sh")
	}
	p, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		t.Skipf("BATOND=%s is not an executable file", p)
	}
	dir := filepath.Dir(p)
	found := false
	for _, r := range []string{filepath.Join(dir, "baton-raftd"), filepath.Join(filepath.Dir(dir), "raft", "baton-raftd")} {
		if st, err := os.Stat(r); err == nil && !st.IsDir() {
			found = true
		}
	}
	if !found {
		t.Skipf("no baton-raftd beside %s or in %s (a cluster needs it; build raft/ with Go >= 1.26)",
			p, filepath.Join(filepath.Dir(dir), "raft"))
	}
	return p
}

func TestLinearizability(t *testing.T) {
	batond := requireBatond(t)
	runFor := envDuration(t, "BATON_LIN_SECONDS", 20*time.Second)
	every := envDuration(t, "BATON_LIN_FAULT_EVERY", 4*time.Second)
	checkTimeout := envDuration(t, "BATON_LIN_CHECK_TIMEOUT", 30*time.Second)
	roundLen := envDuration(t, "BATON_LIN_ROUND_SECONDS", 30*time.Second)
	testStart := time.Now()

	dir, err := os.MkdirTemp("", "baton-linearizability-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("BATON_LIN_KEEP") != "" {
			t.Logf("kept the data directories, node logs and visualizations in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})

	cl, err := newCluster(batond, dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.close) // runs before the directory is removed
	var wg sync.WaitGroup
	startErrs := make([]error, len(cl.nodes))
	for i := range cl.nodes {
		wg.Add(1)
		go func(i int) { defer wg.Done(); startErrs[i] = cl.start(i) }(i)
	}
	wg.Wait()
	for _, err := range startErrs {
		if err != nil {
			t.Fatal(err)
		}
	}
	first, err := cl.leader(30 * time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, cl.logTails(2000))
	}
	t.Logf("cluster up in %.1fs, leader node %d; logs in %s", time.Since(testStart).Seconds(), first+1, dir)

	// The clients.
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	lockName, semName, queueName := "lin/"+run+"/lock", "lin/"+run+"/sem", "lin/"+run+"/queue"
	type group struct {
		kind    string
		n       int
		workers []*worker
	}
	groups := []*group{{kind: "lock", n: lockClients}, {kind: "sem", n: semClients}, {kind: "queue", n: queueClients + 1}}
	dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
	global := 0
	var dialErr error
	var dmu sync.Mutex
	for _, g := range groups {
		g.workers = make([]*worker, g.n)
		for i := 0; i < g.n; i++ {
			wg.Add(1)
			go func(g *group, i, global int) {
				defer wg.Done()
				w, err := dialWorker(dctx, cl, global, i, g.kind)
				dmu.Lock()
				defer dmu.Unlock()
				if err != nil && dialErr == nil {
					dialErr = err
				}
				g.workers[i] = w
			}(g, i, global)
			global++
		}
	}
	wg.Wait()
	dcancel()
	allWorkers := func() []*worker {
		var ws []*worker
		for _, g := range groups {
			for _, w := range g.workers {
				if w != nil {
					ws = append(ws, w)
				}
			}
		}
		return ws
	}
	closeClients := func() {
		var cwg sync.WaitGroup
		for _, w := range allWorkers() {
			cwg.Add(1)
			go func(w *worker) { defer cwg.Done(); w.c.Close() }(w)
		}
		cwg.Wait()
	}
	if dialErr != nil {
		closeClients()
		t.Fatal(dialErr)
	}
	lockW, semW, queueW := groups[0].workers, groups[1].workers, groups[2].workers[:queueClients]
	drainer := groups[2].workers[queueClients]

	// The workload and the faults.
	e := &env{clk: clock{base: time.Now()}, stop: make(chan struct{}), tally: &errTally{}, roundLen: roundLen}
	workStart := time.Now()
	queueErrs := make([]error, queueClients)
	var wwg sync.WaitGroup
	for _, w := range lockW {
		wwg.Add(1)
		go func(w *worker) { defer wwg.Done(); w.lockLoop(e, lockName) }(w)
	}
	for _, w := range semW {
		wwg.Add(1)
		go func(w *worker) { defer wwg.Done(); w.semLoop(e, semName) }(w)
	}
	for i, w := range queueW {
		wwg.Add(1)
		go func(i int, w *worker) { defer wwg.Done(); queueErrs[i] = w.queueLoop(e, queueName) }(i, w)
	}
	var failovers []failover
	var faultErr error
	faultDone := make(chan struct{})
	go func() {
		defer close(faultDone)
		failovers, faultErr = faultLoop(e, cl, every, 500*time.Millisecond)
	}()
	select {
	case <-time.After(runFor):
	case <-faultDone: // the fault loop failed: stop early
	}
	close(e.stop)
	if !within(t, dir, "the end of the fault loop", 45*time.Second, func() { <-faultDone }) {
		t.FailNow()
	}
	if !within(t, dir, "the clients' last operations", 60*time.Second, wwg.Wait) {
		t.FailNow()
	}
	workTime := time.Since(workStart)
	if faultErr != nil {
		closeClients()
		t.Fatalf("fault loop: %v\n%s", faultErr, cl.logTails(3000))
	}
	rounds := int(e.maxRound.Load()) + 1
	if !within(t, dir, "draining the queue", 45*time.Second, func() {
		for r := 0; r < rounds; r++ {
			if err := drainer.drain(e, queueName, r); err != nil {
				t.Errorf("draining the queue of round %d: %v", r, err)
			}
		}
	}) {
		t.FailNow()
	}
	for _, err := range queueErrs {
		if err != nil {
			t.Error(err)
		}
	}
	within(t, dir, "closing the clients", 30*time.Second, closeClients)

	// Session losses: the session is documented to survive failovers. The
	// server releases a lost session's holdings at some time after their
	// grant: a synthetic release of unknown outcome per grant not certainly
	// released keeps the models right.
	for _, ws := range [][]*worker{lockW, semW, queueW} {
		for _, w := range ws {
			if n := w.sessionsLost.Load(); n > 0 {
				t.Errorf("%s (%s transport) lost its session %d time(s), last: %v", w.name, w.transport, n, w.lostErr.Load())
				w.recs = append(w.recs, lostSessionReleases(w.recs)...)
			}
		}
	}

	// The histories: one per kind and round (one object each).
	byRound := func(ws []*worker) [][]record {
		out := make([][]record, rounds)
		for _, w := range ws {
			for _, r := range w.recs {
				out[r.key] = append(out[r.key], r)
			}
		}
		for _, recs := range out {
			sort.SliceStable(recs, func(i, j int) bool { return recs[i].call < recs[j].call })
		}
		return out
	}
	lockRecs, semRecs := byRound(lockW), byRound(semW)
	queueRecs := byRound(append(append([]*worker(nil), queueW...), drainer))
	var hists []*history
	droppedPuts := 0
	var direct []string
	for r := 0; r < rounds; r++ {
		suffix := ""
		if rounds > 1 {
			suffix = fmt.Sprintf(" round %d", r)
		}
		kept, dropped := dropUnseenUnknownPuts(queueRecs[r])
		droppedPuts += dropped
		hists = append(hists,
			&history{name: "lock" + suffix, kind: "lock", model: lockModel, records: lockRecs[r]},
			&history{name: "semaphore" + suffix, kind: "semaphore", model: semModel, records: semRecs[r]},
			&history{name: "queue" + suffix, kind: "queue", model: queueModel, records: kept})
		// Direct checks first: their messages name the operations.
		direct = append(direct, checkTokenOrder("lock"+suffix, lockRecs[r])...)
		direct = append(direct, checkHolders("lock"+suffix, lockRecs[r], 1)...)
		direct = append(direct, checkTokenOrder("semaphore"+suffix, semRecs[r])...)
		direct = append(direct, checkHolders("semaphore"+suffix, semRecs[r], semCapacity)...)
		direct = append(direct, checkQueueItems("queue"+suffix, queueRecs[r])...)
	}
	for i, d := range direct {
		if i == 20 {
			t.Errorf("... and %d more", len(direct)-20)
			break
		}
		t.Error(d)
	}

	// porcupine: the three kinds in parallel, the rounds of a kind one
	// after the other.
	type outcome struct {
		res     porcupine.CheckResult
		took    time.Duration
		visPath string
		visErr  error
	}
	outcomes := make([]outcome, len(hists))
	kinds := []string{"lock", "semaphore", "queue"}
	var cwg sync.WaitGroup
	for _, kind := range kinds {
		cwg.Add(1)
		go func(kind string) {
			defer cwg.Done()
			for i, h := range hists {
				if h.kind != kind {
					continue
				}
				ops, _ := h.operations()
				model := h.model.ToModel()
				t0 := time.Now()
				res, info := porcupine.CheckOperationsVerbose(model, ops, checkTimeout)
				o := outcome{res: res, took: time.Since(t0)}
				if res == porcupine.Illegal {
					info.AddAnnotations(failoverAnnotations(failovers))
					o.visPath = filepath.Join(dir, strings.ReplaceAll(h.name, " ", "-")+"-visualization.html")
					o.visErr = porcupine.VisualizePath(model, info, o.visPath)
				}
				outcomes[i] = o
			}
		}(kind)
	}
	// Bounded by porcupine's timeout, and the visualization of an illegal
	// history.
	if !within(t, dir, "the porcupine checks", checkTimeout+60*time.Second, cwg.Wait) {
		t.FailNow()
	}

	// Report.
	var b strings.Builder
	fmt.Fprintf(&b, "workload %.1fs in %d round(s), %d failovers (kill -9 of the leader → new leader serving):", workTime.Seconds(), rounds, len(failovers))
	for _, f := range failovers {
		fmt.Fprintf(&b, " [%s node %d → node %d in %dms]", ms(f.killAt), f.killed+1, f.newLeader+1, (f.leaderAt-f.killAt)/1e6)
	}
	b.WriteString("\n")
	clients := map[string]int{"lock": lockClients, "semaphore": semClients, "queue": queueClients + 1}
	for _, kind := range kinds {
		var c counts
		var took time.Duration
		results := map[porcupine.CheckResult]int{}
		for i, h := range hists {
			if h.kind != kind {
				continue
			}
			hc := h.counts()
			c.ops += hc.ops
			c.ok += hc.ok
			c.refused += hc.refused
			c.unknown += hc.unknown
			c.synthetic += hc.synthetic
			c.replayed += hc.replayed
			c.waited += hc.waited
			took += outcomes[i].took
			results[outcomes[i].res]++
		}
		fmt.Fprintf(&b, "%-9s %5d ops (%d ok, %d refused, %d unknown outcome", kind, c.ops, c.ok, c.refused, c.unknown)
		if kind != "queue" {
			fmt.Fprintf(&b, "; grants after a wait %d, replayed %d", c.waited, c.replayed)
		} else {
			fmt.Fprintf(&b, "; %d unknown puts never seen dropped", droppedPuts)
		}
		if c.synthetic > 0 {
			fmt.Fprintf(&b, ", %d synthetic", c.synthetic)
		}
		var rs []string
		for _, res := range []porcupine.CheckResult{porcupine.Ok, porcupine.Illegal, porcupine.Unknown} {
			if n := results[res]; n > 0 {
				if rounds > 1 {
					rs = append(rs, fmt.Sprintf("%s ×%d", res, n))
				} else {
					rs = append(rs, string(res))
				}
			}
		}
		fmt.Fprintf(&b, ") from %d clients: %s in %s\n", clients[kind], strings.Join(rs, ", "), took.Round(time.Millisecond))
	}
	var stuck, acksFailed, acksRetried, acksUnknown, redelivered int
	for _, ws := range [][]*worker{lockW, semW, queueW, {drainer}} {
		for _, w := range ws {
			stuck += w.stuck
			acksFailed += w.acksFailed
			acksRetried += w.acksRetried
			acksUnknown += w.acksUnknown
			redelivered += w.redelivered
		}
	}
	var codes []string
	for code, n := range e.tally.byCode {
		codes = append(codes, fmt.Sprintf("%s %d", code, n))
	}
	sort.Strings(codes)
	fmt.Fprintf(&b, "errors by code: %s; releases still unknown after retries %d; acks refused %d (%d after an unknown attempt), unknown %d; items redelivered %d\n",
		strings.Join(codes, ", "), stuck, acksFailed+acksRetried, acksRetried, acksUnknown, redelivered)
	fmt.Fprintf(&b, "whole test %.1fs", time.Since(testStart).Seconds())
	t.Log("\n" + b.String())

	for i, h := range hists {
		o := outcomes[i]
		switch o.res {
		case porcupine.Illegal:
			msg := fmt.Sprintf("the %s history is NOT linearizable", h.name)
			if o.visErr != nil {
				msg += fmt.Sprintf(" (writing the visualization failed: %v)", o.visErr)
			} else {
				msg += "; porcupine's visualization: " + o.visPath
			}
			t.Errorf("%s\nnode logs: %s/node*.log", msg, dir)
		case porcupine.Unknown:
			t.Errorf("the %s history could not be checked within %s (BATON_LIN_CHECK_TIMEOUT): inconclusive", h.name, checkTimeout)
		}
	}
	if n := len(e.tally.unexpected); n > 0 {
		shown := e.tally.unexpected
		if n > 10 {
			shown = shown[:10]
		}
		t.Errorf("%d errors that no failover explains (recorded as unknown outcomes):\n  %s", n, strings.Join(shown, "\n  "))
	}
	if len(failovers) < 3 {
		t.Errorf("only %d failovers during the %.0fs run (want at least 3): raise BATON_LIN_SECONDS or lower BATON_LIN_FAULT_EVERY", len(failovers), runFor.Seconds())
	}
}

// lostSessionReleases: for each grant of a client whose session was lost
// that was not certainly released, a release of unknown outcome from the
// grant's return on.
func lostSessionReleases(recs []record) []record {
	released := map[uint64]bool{}
	for _, r := range recs {
		if r.in.kind == kRelease && r.out.st == stOK {
			released[r.in.arg] = true
		}
	}
	var out []record
	for _, r := range recs {
		if (r.in.kind == kAcquire || r.in.kind == kTryAcquire) && r.out.st == stOK && !released[r.out.val] {
			out = append(out, record{key: r.key, in: opInput{kind: kRelease, client: r.in.client, arg: r.out.val}, out: opOutput{st: stMaybe},
				call: r.ret, ret: r.ret, err: "the session was lost", synthetic: true})
		}
	}
	return out
}

func failoverAnnotations(fs []failover) []porcupine.Annotation {
	var out []porcupine.Annotation
	for _, f := range fs {
		out = append(out, porcupine.Annotation{
			Tag: "failovers", Start: f.killAt, End: f.leaderAt,
			Description:     fmt.Sprintf("kill -9 node %d", f.killed+1),
			Details:         fmt.Sprintf("SIGKILL to leader node %d at %s; node %d serving at %s; node %d back at %s", f.killed+1, ms(f.killAt), f.newLeader+1, ms(f.leaderAt), f.killed+1, ms(f.restartAt)),
			BackgroundColor: "#ffd6d6",
		})
	}
	return out
}
