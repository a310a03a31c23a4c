// Package clustertest runs real baton-raftd processes on 127.0.0.1, each
// with a fake batond speaking the local protocol over its Unix socket, and
// checks what the fakes receive. Every wait is bounded; every process a test
// starts is killed (by its own PID) when the test ends.
package clustertest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/baton/baton/raft/wire"
)

var raftdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "baton-raftd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	raftdBin = filepath.Join(dir, "baton-raftd")
	args := []string{"build", "-o", raftdBin}
	if os.Getenv("RAFTD_RACE") != "" { // build baton-raftd with the race detector
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "github.com/baton/baton/raft/cmd/baton-raftd")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building baton-raftd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ---- the fake batond ----

// entry is one command as a batond applies it.
type entry struct {
	Index uint64
	Data  string
}

type outcome struct {
	cookie    uint64
	committed bool
	index     uint64
	rejected  *wire.Rejected
	at        time.Time
}

// fakeBatond speaks the protocol like batond would: it applies COMMITTED
// entries to a "state" (the ordered list of entries), replaces it on
// INSTALL_SNAPSHOT, and records everything else for the test to inspect.
type fakeBatond struct {
	t    testing.TB
	id   uint64
	conn net.Conn

	wmu sync.Mutex // serialises writes

	mu           sync.Mutex
	state        []entry // applied entries, in index order
	applied      uint64
	ready        *wire.Ready
	beforeReady  []wire.Message // INSTALL_SNAPSHOT and COMMITTED received before READY
	leadership   wire.Leadership
	leaderships  []wire.Leadership
	snapshots    []wire.InstallSnapshot
	rejected     map[uint64]wire.Rejected
	cookieIndex  map[uint64]uint64 // cookie -> index of its COMMITTED
	reads        map[uint64]wire.Message
	replies      map[uint64]wire.Message
	memberships  []wire.Membership
	fatal        *wire.Fatal
	snapRequests int
	errs         []string
	closed       bool

	outcomes chan outcome
}

// encodeState is the fake's snapshot format: the entries, length-prefixed.
func encodeState(es []entry) []byte {
	var b []byte
	for _, e := range es {
		b = binary.LittleEndian.AppendUint64(b, e.Index)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(e.Data)))
		b = append(b, e.Data...)
	}
	return b
}

func decodeState(b []byte) ([]entry, error) {
	var es []entry
	for len(b) > 0 {
		if len(b) < 12 {
			return nil, fmt.Errorf("short state")
		}
		idx := binary.LittleEndian.Uint64(b)
		n := binary.LittleEndian.Uint32(b[8:])
		b = b[12:]
		if uint32(len(b)) < n {
			return nil, fmt.Errorf("short state entry")
		}
		es = append(es, entry{idx, string(b[:n])})
		b = b[n:]
	}
	return es, nil
}

func dialBatond(t testing.TB, id uint64, sock string, state []entry, applied uint64) *fakeBatond {
	t.Helper()
	var conn net.Conn
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err = net.Dial("unix", sock)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d: connect to %s: %v", id, sock, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	f := &fakeBatond{
		t: t, id: id, conn: conn,
		state: append([]entry(nil), state...), applied: applied,
		rejected: map[uint64]wire.Rejected{}, cookieIndex: map[uint64]uint64{},
		reads: map[uint64]wire.Message{}, replies: map[uint64]wire.Message{},
		outcomes: make(chan outcome, 1<<20),
	}
	f.send(&wire.Hello{AppliedIndex: applied})
	go f.readLoop()
	return f
}

func (f *fakeBatond) send(m wire.Message) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	f.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := wire.WriteFrame(f.conn, m); err != nil {
		f.mu.Lock()
		if !f.closed {
			f.errs = append(f.errs, fmt.Sprintf("write %T: %v", m, err))
		}
		f.mu.Unlock()
	}
}

func (f *fakeBatond) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.conn.Close()
}

func (f *fakeBatond) fail(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf("node %d: ", f.id)+fmt.Sprintf(format, args...))
}

func (f *fakeBatond) readLoop() {
	for {
		m, err := wire.ReadFrame(f.conn)
		if err != nil {
			f.mu.Lock()
			f.closed = true
			f.mu.Unlock()
			return
		}
		f.mu.Lock()
		if f.ready == nil {
			switch m.(type) {
			case *wire.Committed, *wire.InstallSnapshot, *wire.Ready, *wire.Fatal:
			default:
				f.fail("%T before READY", m)
			}
		}
		switch m := m.(type) {
		case *wire.Ready:
			if f.ready != nil {
				f.fail("second READY")
			}
			f.ready = m
		case *wire.Committed:
			if f.ready == nil {
				f.beforeReady = append(f.beforeReady, m)
			}
			if m.Index <= f.applied {
				f.fail("COMMITTED index %d not above applied %d", m.Index, f.applied)
			}
			f.applied = m.Index
			f.state = append(f.state, entry{m.Index, string(m.Data)})
			if m.Cookie != 0 {
				if _, dup := f.cookieIndex[m.Cookie]; dup {
					f.fail("cookie %d committed twice", m.Cookie)
				}
				if _, rej := f.rejected[m.Cookie]; rej {
					f.fail("cookie %d committed after it was rejected", m.Cookie)
				}
				f.cookieIndex[m.Cookie] = m.Index
				f.outcomes <- outcome{cookie: m.Cookie, committed: true, index: m.Index, at: time.Now()}
			}
		case *wire.InstallSnapshot:
			if f.ready == nil {
				f.beforeReady = append(f.beforeReady, m)
			}
			es, err := decodeState(m.Data)
			if err != nil {
				f.fail("INSTALL_SNAPSHOT: %v", err)
			}
			if m.Index <= f.applied {
				f.fail("INSTALL_SNAPSHOT at %d not above applied %d", m.Index, f.applied)
			}
			f.state, f.applied = es, m.Index
			f.snapshots = append(f.snapshots, *m)
		case *wire.Rejected:
			if _, ok := f.cookieIndex[m.Cookie]; ok {
				f.fail("cookie %d rejected after it committed", m.Cookie)
			}
			if _, dup := f.rejected[m.Cookie]; dup {
				f.fail("cookie %d rejected twice", m.Cookie)
			}
			f.rejected[m.Cookie] = *m
			f.outcomes <- outcome{cookie: m.Cookie, rejected: m, at: time.Now()}
		case *wire.Leadership:
			f.leadership = *m
			f.leaderships = append(f.leaderships, *m)
		case *wire.ReadState:
			if m.Index > f.applied {
				// Every entry <= index must have been sent before (empty and
				// conf-change entries are not sent, so applied may be lower
				// only if the last entries were of those kinds).
			}
			f.reads[m.Ctx] = m
		case *wire.ReadRejected:
			f.reads[m.Ctx] = m
		case *wire.Reply:
			f.replies[m.ReqID] = m
		case *wire.StatusReply:
			f.replies[m.ReqID] = m
		case *wire.Membership:
			f.memberships = append(f.memberships, *m)
		case *wire.Fatal:
			f.fatal = m
		case *wire.SnapshotRequest:
			f.snapRequests++
			go f.compact()
		default:
			f.fail("unexpected %T", m)
		}
		f.mu.Unlock()
	}
}

// with runs fn under the fake's lock.
func (f *fakeBatond) with(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

func (f *fakeBatond) isLeader() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leadership.IsLeader
}

func (f *fakeBatond) appliedIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

func (f *fakeBatond) snapshotState() []entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]entry(nil), f.state...)
}

func (f *fakeBatond) errors() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.errs...)
}

// compact sends COMPACT with the fake's whole state.
func (f *fakeBatond) compact() uint64 {
	f.mu.Lock()
	idx, data := f.applied, encodeState(f.state)
	f.mu.Unlock()
	f.send(&wire.Compact{Index: idx, Data: data})
	return idx
}

// request sends an admin request and waits for its reply.
func (f *fakeBatond) request(t testing.TB, m wire.Message, reqID uint64, timeout time.Duration) wire.Message {
	t.Helper()
	f.send(m)
	var r wire.Message
	waitFor(t, timeout, fmt.Sprintf("node %d: reply to %T", f.id, m), func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		r = f.replies[reqID]
		return r != nil
	})
	return r
}

// read sends READ_INDEX and waits for its answer.
func (f *fakeBatond) read(t testing.TB, ctx uint64, timeout time.Duration) wire.Message {
	t.Helper()
	f.send(&wire.ReadIndex{Ctx: ctx})
	var r wire.Message
	waitFor(t, timeout, fmt.Sprintf("node %d: answer to READ_INDEX %d", f.id, ctx), func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		r = f.reads[ctx]
		return r != nil
	})
	return r
}

// waitFor polls cond every 5 ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ---- processes and clusters ----

// pause sends SIGSTOP to pid and waits until every thread of it is stopped:
// kill(2) only queues the signal, and on a loaded machine a follower may
// still run (and acknowledge an append) for a while after it returns.
func pause(t testing.TB, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, fmt.Sprintf("every thread of pid %d to stop", pid), func() bool {
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		if err != nil || len(tasks) == 0 {
			return false
		}
		for _, p := range tasks {
			b, err := os.ReadFile(p)
			if err != nil {
				return false
			}
			// The state follows the command name, which is in parentheses.
			i := bytes.LastIndexByte(b, ')')
			if i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
				return false
			}
		}
		return true
	})
}

type node struct {
	id         uint64
	peerAddr   string
	clientAddr string
	dataDir    string
	sock       string
	logPath    string

	cmd    *exec.Cmd
	done   chan struct{}
	exit   *os.ProcessState
	b      *fakeBatond
	extra  []string // extra flags
	env    []string // extra environment (test hooks)
	joined bool
}

type cluster struct {
	t     testing.TB
	dir   string
	nodes map[uint64]*node
	args  []string // extra flags for every node
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// newCluster starts n nodes that bootstrap together, connects a fake batond
// to each and waits until one of them leads.
func newCluster(t testing.TB, n int, args ...string) *cluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "raftd-test-")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, dir: dir, nodes: map[uint64]*node{}, args: args}
	t.Cleanup(c.shutdown)
	for i := 1; i <= n; i++ {
		c.addNode(uint64(i))
	}
	for _, nd := range c.nodes {
		c.start(nd, nil, 0)
	}
	c.waitLeader(10*time.Second, 0)
	return c
}

func (c *cluster) addNode(id uint64) *node {
	nd := &node{
		id:         id,
		peerAddr:   freePort(c.t),
		clientAddr: fmt.Sprintf("127.0.0.1:%d", 17000+id),
		dataDir:    filepath.Join(c.dir, fmt.Sprintf("node%d", id)),
		sock:       filepath.Join(c.dir, fmt.Sprintf("node%d.sock", id)),
		logPath:    filepath.Join(c.dir, fmt.Sprintf("node%d.log", id)),
	}
	c.nodes[id] = nd
	return nd
}

func (c *cluster) initialCluster(includeJoined bool) string {
	var parts []string
	for _, nd := range c.sorted() {
		if nd.joined && !includeJoined {
			continue
		}
		parts = append(parts, fmt.Sprintf("%d=%s@%s", nd.id, nd.peerAddr, nd.clientAddr))
	}
	return strings.Join(parts, ",")
}

func (c *cluster) sorted() []*node {
	var out []*node
	for _, nd := range c.nodes {
		out = append(out, nd)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// start runs the node's baton-raftd and connects a fake batond whose state
// is `state` covering `applied`.
func (c *cluster) start(nd *node, state []entry, applied uint64) {
	c.t.Helper()
	args := []string{
		"--id", strconv.FormatUint(nd.id, 10),
		"--data-dir", nd.dataDir,
		"--socket", nd.sock,
		"--peer-listen", nd.peerAddr,
		"--initial-cluster", c.initialCluster(nd.joined),
	}
	if nd.joined {
		args = append(args, "--join")
	}
	args = append(args, c.args...)
	args = append(args, nd.extra...)
	logf, err := os.OpenFile(nd.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	fmt.Fprintf(logf, "==== start %s %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(args, " "))
	cmd := exec.Command(raftdBin, args...)
	cmd.Env = append(os.Environ(), nd.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	nd.cmd = cmd
	nd.done = make(chan struct{})
	nd.exit = nil
	go func() {
		cmd.Wait()
		logf.Close()
		nd.exit = cmd.ProcessState
		close(nd.done)
	}()
	nd.b = dialBatond(c.t, nd.id, nd.sock, state, applied)
	waitFor(c.t, 10*time.Second, fmt.Sprintf("READY from node %d", nd.id), func() bool {
		var ok bool
		nd.b.with(func() { ok = nd.b.ready != nil })
		return ok
	})
}

func (nd *node) running() bool {
	if nd.cmd == nil {
		return false
	}
	select {
	case <-nd.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL to the node's process and waits for it to end.
func (c *cluster) kill(nd *node) {
	c.t.Helper()
	if !nd.running() {
		return
	}
	nd.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-nd.done:
	case <-time.After(10 * time.Second):
		c.t.Fatalf("node %d did not die after SIGKILL", nd.id)
	}
	nd.b.close()
}

func (c *cluster) shutdown() {
	for _, nd := range c.nodes {
		if nd.running() {
			nd.cmd.Process.Signal(syscall.SIGCONT)
			nd.cmd.Process.Signal(syscall.SIGKILL)
			select {
			case <-nd.done:
			case <-time.After(5 * time.Second):
			}
		}
		if nd.b != nil {
			nd.b.close()
		}
	}
	var errs []string
	for _, nd := range c.nodes {
		if nd.b != nil {
			errs = append(errs, nd.b.errors()...)
		}
	}
	if len(errs) > 0 {
		c.t.Errorf("protocol violations seen by the fake batonds:\n%s", strings.Join(errs, "\n"))
	}
	for _, nd := range c.sorted() {
		if b, err := os.ReadFile(nd.logPath); err == nil && bytes.Contains(b, []byte("DATA RACE")) {
			c.t.Errorf("node %d: the race detector reported a data race (see its log below)", nd.id)
		}
	}
	if c.t.Failed() || os.Getenv("RAFTD_KEEP_LOGS") != "" {
		for _, nd := range c.sorted() {
			if b, err := os.ReadFile(nd.logPath); err == nil {
				tail := b
				if len(tail) > 6000 {
					tail = tail[len(tail)-6000:]
				}
				c.t.Logf("---- log of node %d (tail) ----\n%s", nd.id, tail)
			}
		}
	}
	if os.Getenv("RAFTD_KEEP_LOGS") == "dir" {
		c.t.Logf("kept %s", c.dir)
		return
	}
	os.RemoveAll(c.dir)
}

// leader returns the running node whose batond was told it leads, if any.
func (c *cluster) leader() *node {
	for _, nd := range c.sorted() {
		if nd.running() && nd.b.isLeader() {
			return nd
		}
	}
	return nil
}

// waitLeader waits until a running node other than `not` leads.
func (c *cluster) waitLeader(timeout time.Duration, not uint64) *node {
	c.t.Helper()
	var l *node
	waitFor(c.t, timeout, "a leader", func() bool {
		for _, nd := range c.sorted() {
			if nd.id != not && nd.running() && nd.b.isLeader() {
				l = nd
				return true
			}
		}
		return false
	})
	return l
}

func (c *cluster) followers(l *node) []*node {
	var out []*node
	for _, nd := range c.sorted() {
		if nd != l && nd.running() {
			out = append(out, nd)
		}
	}
	return out
}

var cookieSeq uint64 = 1000

// proposeWait proposes data on nd and waits for its outcome.
func proposeWait(t testing.TB, nd *node, data string, timeout time.Duration) outcome {
	t.Helper()
	cookieSeq++
	cookie := cookieSeq
	nd.b.send(&wire.Propose{Cookie: cookie, Data: []byte(data)})
	deadline := time.After(timeout)
	for {
		select {
		case o := <-nd.b.outcomes:
			if o.cookie == cookie {
				return o
			}
		case <-deadline:
			t.Fatalf("node %d: no outcome for proposal %q within %v", nd.id, data, timeout)
		}
	}
}

// proposeMany proposes the given data on nd with up to `window` in flight
// and waits until every one committed; it fails the test on a rejection.
func proposeMany(t testing.TB, nd *node, datas []string, window int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	inflight := 0
	next := 0
	done := 0
	for done < len(datas) {
		for inflight < window && next < len(datas) {
			cookieSeq++
			nd.b.send(&wire.Propose{Cookie: cookieSeq, Data: []byte(datas[next])})
			next++
			inflight++
		}
		select {
		case o := <-nd.b.outcomes:
			if !o.committed {
				t.Fatalf("node %d: proposal rejected: %+v", nd.id, *o.rejected)
			}
			inflight--
			done++
		case <-deadline:
			t.Fatalf("node %d: %d of %d proposals committed within %v", nd.id, done, len(datas), timeout)
		}
	}
}

// waitConverged waits until every running node's fake has applied at least
// up to the leader's applied index, then checks every state is identical.
func (c *cluster) waitConverged(timeout time.Duration) []entry {
	c.t.Helper()
	var want []entry
	// Compare the last entry of each state, not the fakes' applied index:
	// a snapshot may cover no-ops and membership entries after it.
	last := func(nd *node) uint64 {
		st := nd.b.snapshotState()
		if len(st) == 0 {
			return 0
		}
		return st[len(st)-1].Index
	}
	waitFor(c.t, timeout, "every node to apply the same entries", func() bool {
		var ref *node
		for _, nd := range c.sorted() {
			if nd.running() && (ref == nil || last(nd) > last(ref)) {
				ref = nd
			}
		}
		for _, nd := range c.sorted() {
			if nd.running() && last(nd) != last(ref) {
				return false
			}
		}
		want = ref.b.snapshotState()
		return true
	})
	for _, nd := range c.sorted() {
		if !nd.running() {
			continue
		}
		got := nd.b.snapshotState()
		if !sameEntries(got, want) {
			c.t.Fatalf("node %d applied a different sequence: %d entries vs %d\nfirst difference: %s", nd.id, len(got), len(want), firstDiff(got, want))
		}
	}
	return want
}

func sameEntries(a, b []entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func firstDiff(a, b []entry) string {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return fmt.Sprintf("at %d: %+v vs %+v", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(a), len(b))
}

func datas(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%04d", prefix, i)
	}
	return out
}

func containsData(es []entry, prefix string) bool {
	for _, e := range es {
		if strings.HasPrefix(e.Data, prefix) {
			return true
		}
	}
	return false
}

// proposeOnLeader proposes data on whichever node leads, retrying after a
// rejection (leadership may still move right after a fault), until it
// commits; an entry rejected as maybe committed may commit too, so the
// caller must tolerate duplicates of data.
func (c *cluster) proposeOnLeader(data string, timeout time.Duration) outcome {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		l := c.waitLeader(time.Until(deadline), 0)
		o := proposeWait(c.t, l, data, time.Until(deadline))
		if o.committed {
			return o
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("%q not committed within %v", data, timeout)
	return outcome{}
}
