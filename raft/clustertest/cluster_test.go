package clustertest

import (
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baton/baton/raft/wire"
)

func TestThreeNodesElectALeaderAndCommitInOrder(t *testing.T) {
	c := newCluster(t, 3)
	l := c.leader()
	for _, f := range c.followers(l) {
		waitFor(t, 5*time.Second, "followers to learn the leader", func() bool {
			var lead wire.Leadership
			f.b.with(func() { lead = f.b.leadership })
			return lead.LeaderID == l.id && !lead.IsLeader && lead.LeaderClientAddr == l.clientAddr
		})
	}
	proposeMany(t, l, datas("a", 200), 16, 20*time.Second)
	state := c.waitConverged(10 * time.Second)
	var got []string
	for _, e := range state {
		got = append(got, e.Data)
	}
	want := datas("a", 200)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("committed order differs from proposal order:\n got %v\nwant %v", got, want)
	}
	// Cookies come back only to the proposer.
	for _, f := range c.followers(l) {
		f.b.with(func() {
			if len(f.b.cookieIndex) != 0 {
				t.Errorf("follower %d saw %d cookies", f.id, len(f.b.cookieIndex))
			}
		})
	}
	l.b.with(func() {
		if len(l.b.cookieIndex) != 200 {
			t.Errorf("leader saw %d cookies, want 200", len(l.b.cookieIndex))
		}
	})
}

func TestFollowerRejectsProposalsAndReadsNamingTheLeader(t *testing.T) {
	c := newCluster(t, 3)
	l := c.leader()
	proposeWait(t, l, "x", 5*time.Second)
	f := c.followers(l)[0]
	waitFor(t, 5*time.Second, "follower to learn the leader", func() bool {
		var lead wire.Leadership
		f.b.with(func() { lead = f.b.leadership })
		return lead.LeaderID == l.id
	})
	o := proposeWait(t, f, "on-follower", 5*time.Second)
	if o.committed || o.rejected.Code != wire.CodeUnavailable || o.rejected.LeaderID != l.id ||
		o.rejected.LeaderClientAddr != l.clientAddr || o.rejected.MaybeCommitted {
		t.Fatalf("proposal on a follower: %+v %+v", o, o.rejected)
	}
	if r, ok := f.b.read(t, 7, 5*time.Second).(*wire.ReadRejected); !ok || r.Code != wire.CodeUnavailable || r.LeaderID != l.id {
		t.Fatalf("READ_INDEX on a follower: %#v", r)
	}
	o = proposeWait(t, l, "y", 5*time.Second)
	rs, ok := l.b.read(t, 8, 5*time.Second).(*wire.ReadState)
	if !ok || rs.Index < o.index {
		t.Fatalf("READ_INDEX on the leader: %#v (last commit %d)", rs, o.index)
	}
	if l.b.appliedIndex() < o.index {
		t.Fatalf("READ_STATE arrived before the entries it covers")
	}
	if st, ok := f.b.request(t, &wire.Status{ReqID: 1}, 1, 5*time.Second).(*wire.StatusReply); !ok || st.LeaderID != l.id || st.State != wire.StateFollower || len(st.Members) != 3 {
		t.Fatalf("STATUS on a follower: %#v", st)
	}
}

func TestClosingTheBatondSocketStopsRaftd(t *testing.T) {
	c := newCluster(t, 3)
	nd := c.followers(c.leader())[0]
	nd.b.close()
	select {
	case <-nd.done:
	case <-time.After(5 * time.Second):
		t.Fatal("baton-raftd still runs 5 s after its batond closed the socket")
	}
	if code := nd.exit.ExitCode(); code != 3 {
		t.Fatalf("exit code %d, want 3", code)
	}
}

// A killed node restarted with an empty batond gets every committed entry
// from its own WAL before READY, then the entries it missed.
func TestRestartReplaysTheWALThenCatchesUp(t *testing.T) {
	c := newCluster(t, 3)
	l := c.leader()
	proposeMany(t, l, datas("before", 50), 8, 10*time.Second)
	f := c.followers(l)[0]
	c.waitConverged(5 * time.Second)
	lastBefore := f.b.appliedIndex()
	c.kill(f)
	proposeMany(t, l, datas("while-down", 50), 8, 10*time.Second)

	c.start(f, nil, 0)
	var ready *wire.Ready
	var before []wire.Message
	f.b.with(func() { ready, before = f.b.ready, f.b.beforeReady })
	if ready.NodeID != f.id || len(ready.Members) != 3 {
		t.Fatalf("READY %+v", ready)
	}
	// The replay delivers every entry the WAL's HardState says is
	// committed. That commit index may trail what the node had delivered:
	// etcd's WAL writes a commit-only HardState change without syncing (the
	// leader tells the node again), so a kill -9 may lose the last few.
	n := 0
	for _, m := range before {
		if cm, ok := m.(*wire.Committed); ok && cm.Index <= ready.LastCommitted {
			n++
		}
	}
	if n < 25 || ready.LastCommitted > lastBefore {
		t.Fatalf("replay before READY delivered %d of the 50 entries in the WAL (READY says %d, the node had %d)", n, ready.LastCommitted, lastBefore)
	}
	t.Logf("replayed %d entries from the WAL before READY (last committed %d, the node had delivered %d)", n, ready.LastCommitted, lastBefore)
	state := c.waitConverged(10 * time.Second)
	if len(state) != 100 {
		t.Fatalf("%d entries after catching up, want 100", len(state))
	}

	// Restart again with a batond that already covers part of the log: only
	// later entries are delivered.
	half := state[24].Index
	c.kill(f)
	c.start(f, state[:25], half)
	f.b.with(func() {
		for _, m := range f.b.beforeReady {
			if cm, ok := m.(*wire.Committed); ok && cm.Index <= half {
				t.Errorf("entry %d delivered although HELLO said %d", cm.Index, half)
			}
		}
	})
	c.waitConverged(10 * time.Second)
}

// COMPACT makes the raft snapshot; a node too far behind receives it as
// INSTALL_SNAPSHOT, then the later entries; a restarted node that compacted
// starts from its own snapshot.
func TestCompactedLogSendsSnapshotToALaggingNode(t *testing.T) {
	c := newCluster(t, 3, "--snapshot-catchup-entries", "10")
	l := c.leader()
	lag := c.followers(l)[0]
	proposeMany(t, l, datas("early", 20), 8, 10*time.Second)
	c.waitConverged(5 * time.Second)
	c.kill(lag)
	proposeMany(t, l, datas("mid", 200), 16, 20*time.Second)
	c.waitConverged(5 * time.Second)
	for _, nd := range c.followers(nil) {
		nd.b.compact()
	}
	proposeMany(t, l, datas("late", 20), 8, 10*time.Second)

	c.start(lag, nil, 0)
	state := c.waitConverged(15 * time.Second)
	if len(state) != 240 {
		t.Fatalf("lagging node converged on %d entries, want 240", len(state))
	}
	lag.b.with(func() {
		if len(lag.b.snapshots) != 1 {
			t.Fatalf("lagging node got %d INSTALL_SNAPSHOTs, want 1", len(lag.b.snapshots))
		}
	})

	// The lagging node restarts from the snapshot it received (saved in its
	// own data dir), with an empty batond.
	c.kill(lag)
	c.start(lag, nil, 0)
	lag.b.with(func() {
		if len(lag.b.beforeReady) == 0 {
			t.Fatal("nothing delivered before READY")
		}
		if _, ok := lag.b.beforeReady[0].(*wire.InstallSnapshot); !ok {
			t.Fatalf("first message after HELLO is %T, want INSTALL_SNAPSHOT", lag.b.beforeReady[0])
		}
	})
	c.waitConverged(10 * time.Second)

	// The leader restarts from its own snapshot with an empty batond.
	var snapIdx uint64
	c.kill(l)
	c.start(l, nil, 0)
	l.b.with(func() {
		if len(l.b.beforeReady) == 0 {
			t.Fatal("nothing delivered before READY")
		}
		is, ok := l.b.beforeReady[0].(*wire.InstallSnapshot)
		if !ok {
			t.Fatalf("first message after HELLO is %T, want INSTALL_SNAPSHOT", l.b.beforeReady[0])
		}
		snapIdx = is.Index
	})
	if snapIdx == 0 {
		t.Fatal("no snapshot index")
	}
	c.waitConverged(10 * time.Second)
}

func TestAddListAndRemoveMembers(t *testing.T) {
	c := newCluster(t, 3, "--snapshot-catchup-entries", "5")
	l := c.leader()
	proposeMany(t, l, datas("m", 50), 8, 10*time.Second)
	c.waitConverged(5 * time.Second)
	for _, nd := range c.followers(nil) {
		nd.b.compact()
	}
	proposeMany(t, l, datas("n", 20), 8, 10*time.Second)

	nd4 := c.addNode(4)
	nd4.joined = true
	r := l.b.request(t, &wire.AddMember{ReqID: 11, Member: wire.Member{ID: 4, PeerAddr: nd4.peerAddr, ClientAddr: nd4.clientAddr}}, 11, 10*time.Second).(*wire.Reply)
	if r.Code != wire.CodeOK || len(r.Members) != 4 {
		t.Fatalf("ADD_MEMBER: %+v", r)
	}
	// A second change of an existing member is refused.
	if r := l.b.request(t, &wire.AddMember{ReqID: 12, Member: wire.Member{ID: 4, PeerAddr: nd4.peerAddr, ClientAddr: nd4.clientAddr}}, 12, 5*time.Second).(*wire.Reply); r.Code != wire.CodeAlreadyExists {
		t.Fatalf("second ADD_MEMBER of 4: %+v", r)
	}
	c.start(nd4, nil, 0)
	state := c.waitConverged(15 * time.Second)
	if len(state) != 70 {
		t.Fatalf("joined node converged on %d entries, want 70", len(state))
	}
	nd4.b.with(func() {
		if len(nd4.b.snapshots) != 1 {
			t.Errorf("joined node got %d INSTALL_SNAPSHOTs, want 1 (the log was compacted)", len(nd4.b.snapshots))
		}
	})
	for _, nd := range c.sorted() {
		r := nd.b.request(t, &wire.ListMembers{ReqID: 13}, 13, 5*time.Second).(*wire.Reply)
		if r.Code != wire.CodeOK || len(r.Members) != 4 || r.Members[3].ClientAddr != nd4.clientAddr {
			t.Fatalf("LIST_MEMBERS on %d: %+v", nd.id, r)
		}
	}
	// Every node learns of the change through MEMBERSHIP (the joined one
	// through the snapshot or the entry).
	for _, nd := range c.followers(l) {
		if nd == nd4 {
			continue
		}
		nd.b.with(func() {
			if len(nd.b.memberships) == 0 || len(nd.b.memberships[len(nd.b.memberships)-1].Members) != 4 {
				t.Errorf("node %d memberships: %+v", nd.id, nd.b.memberships)
			}
		})
	}
	// The joined node heard of the leader before it knew the members: it
	// must still tell batond where the leader is, once it knows.
	waitFor(t, 10*time.Second, "the joined node to report the leader's client address", func() bool {
		var got wire.Leadership
		nd4.b.with(func() { got = nd4.b.leadership })
		return got.LeaderID == l.id && got.LeaderClientAddr == l.clientAddr
	})
	proposeMany(t, l, datas("four", 10), 4, 10*time.Second)
	c.waitConverged(10 * time.Second)

	// Remove a follower that is not 4; the rest keep committing.
	var victim *node
	for _, nd := range c.followers(l) {
		if nd != nd4 {
			victim = nd
			break
		}
	}
	r = l.b.request(t, &wire.RemoveMember{ReqID: 14, ID: victim.id}, 14, 10*time.Second).(*wire.Reply)
	if r.Code != wire.CodeOK || len(r.Members) != 3 {
		t.Fatalf("REMOVE_MEMBER: %+v", r)
	}
	if r := l.b.request(t, &wire.RemoveMember{ReqID: 15, ID: 99}, 15, 5*time.Second).(*wire.Reply); r.Code != wire.CodeNotFound {
		t.Fatalf("REMOVE_MEMBER of a stranger: %+v", r)
	}
	if r := victim.b.request(t, &wire.RemoveMember{ReqID: 16, ID: 1}, 16, 5*time.Second).(*wire.Reply); r.Code != wire.CodeUnavailable {
		t.Fatalf("REMOVE_MEMBER on a follower: %+v", r)
	}
	c.kill(victim)
	proposeMany(t, l, datas("after-remove", 10), 4, 10*time.Second)
	c.waitConverged(10 * time.Second)
}

func TestTransferLeadership(t *testing.T) {
	c := newCluster(t, 3)
	l := c.leader()
	proposeWait(t, l, "x", 5*time.Second)
	to := c.followers(l)[1]
	r := l.b.request(t, &wire.TransferLeadership{ReqID: 21, To: to.id}, 21, 10*time.Second).(*wire.Reply)
	if r.Code != wire.CodeOK || r.LeaderID != to.id {
		t.Fatalf("TRANSFER_LEADERSHIP to %d: %+v", to.id, r)
	}
	nl := c.waitLeader(5*time.Second, l.id)
	if nl != to {
		t.Fatalf("node %d leads, want %d", nl.id, to.id)
	}
	waitFor(t, 5*time.Second, "old leader to be told it no longer leads", func() bool { return !l.b.isLeader() })
	proposeWait(t, nl, "after-transfer", 5*time.Second)

	// To 0: the most up-to-date follower.
	r = nl.b.request(t, &wire.TransferLeadership{ReqID: 22}, 22, 10*time.Second).(*wire.Reply)
	if r.Code != wire.CodeOK || r.LeaderID == nl.id || r.LeaderID == 0 {
		t.Fatalf("TRANSFER_LEADERSHIP to 0: %+v", r)
	}
	nl2 := c.waitLeader(5*time.Second, nl.id)
	proposeWait(t, nl2, "after-second-transfer", 5*time.Second)
	// On a follower it fails.
	if r := l.b.request(t, &wire.TransferLeadership{ReqID: 23, To: 1}, 23, 5*time.Second).(*wire.Reply); l != nl2 && r.Code != wire.CodeUnavailable {
		t.Fatalf("TRANSFER_LEADERSHIP on a follower: %+v", r)
	}
	c.waitConverged(5 * time.Second)
}

// A leader paused longer than the election timeout must not commit anything
// as leader when it wakes: the others elect a new leader, the old one is
// told it no longer leads, and what it accepted while it believed it led is
// rejected and never committed.
func TestPausedLeaderNeverCommitsAfterWaking(t *testing.T) {
	c := newCluster(t, 3)
	old := c.leader()
	proposeMany(t, old, datas("pre", 20), 8, 10*time.Second)
	pause(t, old.cmd.Process.Pid)
	stopped := true
	defer func() {
		if stopped {
			syscall.Kill(old.cmd.Process.Pid, syscall.SIGCONT)
		}
	}()
	nl := c.waitLeader(10*time.Second, old.id)
	// The old leader's batond still believes it leads and proposes; the
	// requests wait in the socket until the process runs again.
	var cookies []uint64
	for i := 0; i < 5; i++ {
		cookieSeq++
		cookies = append(cookies, cookieSeq)
		old.b.send(&wire.Propose{Cookie: cookieSeq, Data: []byte(fmt.Sprintf("stale-%d", i))})
	}
	old.b.send(&wire.ReadIndex{Ctx: 99})
	proposeMany(t, nl, datas("new", 20), 8, 10*time.Second)
	time.Sleep(1500 * time.Millisecond) // paused for well over the election timeout
	syscall.Kill(old.cmd.Process.Pid, syscall.SIGCONT)
	stopped = false

	waitFor(t, 10*time.Second, "old leader's batond to be told it no longer leads", func() bool {
		var lead wire.Leadership
		old.b.with(func() { lead = old.b.leadership })
		return !lead.IsLeader && lead.LeaderID != old.id
	})
	waitFor(t, 10*time.Second, "outcomes of the stale proposals", func() bool {
		n := 0
		old.b.with(func() {
			for _, c := range cookies {
				if _, ok := old.b.rejected[c]; ok {
					n++
				}
				if _, ok := old.b.cookieIndex[c]; ok {
					t.Errorf("stale proposal %d committed", c)
				}
			}
		})
		return n == len(cookies)
	})
	if r, ok := old.b.read(t, 99, 10*time.Second).(*wire.ReadRejected); !ok {
		t.Fatalf("READ_INDEX on the paused leader: %#v", r)
	}
	c.proposeOnLeader("after", 15*time.Second)
	state := c.waitConverged(10 * time.Second)
	if containsData(state, "stale-") {
		t.Fatal("an entry proposed by the paused leader was committed")
	}
	var leaderships []wire.Leadership
	old.b.with(func() { leaderships = old.b.leaderships })
	t.Logf("old leader's LEADERSHIP messages: %+v", leaderships)
}

// Kill -9 of the leader, repeatedly: a new leader must commit within a few
// seconds. Failover = from SIGKILL to the first COMMITTED of a proposal made
// on the new leader (as soon as its batond is told it leads). With fast
// failover (the default) the followers see the leader's process go away.
func TestFailoverAfterKillingTheLeader(t *testing.T) {
	runFailover(t, "kill -9, fast failover", strings.Fields(os.Getenv("RAFTD_FAILOVER_FLAGS")))
}

// The same with fast failover off: the followers notice only by the
// election timeout, as they would for a leader whose host died or was cut
// off (its connections do not close).
func TestFailoverByElectionTimeout(t *testing.T) {
	runFailover(t, "kill -9, election timeout", append([]string{"--fast-failover=false"}, strings.Fields(os.Getenv("RAFTD_FAILOVER_FLAGS"))...))
}

func runFailover(t *testing.T, name string, flags []string) {
	trials := 10
	if s := os.Getenv("RAFTD_FAILOVER_TRIALS"); s != "" {
		trials, _ = strconv.Atoi(s)
	}
	if testing.Short() {
		trials = 3
	}
	c := newCluster(t, 3, flags...)
	var times []time.Duration
	for i := 0; i < trials; i++ {
		l := c.waitLeader(10*time.Second, 0)
		proposeMany(t, l, datas(fmt.Sprintf("t%d", i), 10), 4, 10*time.Second)
		c.waitConverged(10 * time.Second)
		killed := time.Now()
		c.kill(l)
		nl := c.waitLeader(10*time.Second, l.id)
		o := proposeWait(t, nl, fmt.Sprintf("first-after-%d", i), 10*time.Second)
		if !o.committed {
			t.Fatalf("first proposal on the new leader rejected: %+v", o.rejected)
		}
		d := o.at.Sub(killed)
		times = append(times, d)
		t.Logf("trial %d: leader %d killed, node %d committed after %v", i, l.id, nl.id, d.Round(time.Millisecond))
		if d > 5*time.Second {
			t.Errorf("failover took %v", d)
		}
		// Bring the old leader back with its data and an empty batond.
		c.start(l, nil, 0)
		c.waitConverged(10 * time.Second)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	p := func(q float64) time.Duration { return times[min(len(times)-1, int(q*float64(len(times))))] }
	summary := fmt.Sprintf("FAILOVER (%s, flags %q) trials=%d p50=%v p99=%v max=%v", name, flags, len(times),
		p(0.5).Round(time.Millisecond), p(0.99).Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond))
	t.Log(summary)
	fmt.Println(summary)
}

// A frame baton-raftd cannot parse is fatal: FATAL, then exit status 1.
func TestProtocolErrorIsFatal(t *testing.T) {
	c := newCluster(t, 3)
	nd := c.followers(c.leader())[0]
	nd.b.wmu.Lock()
	nd.b.conn.Write([]byte{1, 0, 0, 0, 0x7F}) // unknown type 0x7F
	nd.b.wmu.Unlock()
	select {
	case <-nd.done:
	case <-time.After(5 * time.Second):
		t.Fatal("baton-raftd still runs after a protocol error")
	}
	if code := nd.exit.ExitCode(); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	nd.b.with(func() {
		if nd.b.fatal == nil || !strings.Contains(nd.b.fatal.Message, "unknown message type") {
			t.Fatalf("FATAL: %+v", nd.b.fatal)
		}
	})
	nd.b.close()
}

// A single-node cluster, with batond's socket passed as an inherited
// descriptor (one end of a socketpair) instead of a path.
func TestSingleNodeOverAnInheritedSocket(t *testing.T) {
	dir := t.TempDir()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	child := os.NewFile(uintptr(fds[1]), "raftd-end")
	mine := os.NewFile(uintptr(fds[0]), "batond-end")
	peer := freePort(t)
	logf, _ := os.Create(dir + "/node.log")
	cmd := exec.Command(raftdBin, "--id", "7", "--data-dir", dir+"/data", "--socket-fd", "3",
		"--peer-listen", peer, "--initial-cluster", "7="+peer+"@127.0.0.1:17007")
	cmd.ExtraFiles = []*os.File{child}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child.Close()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	defer func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			b, _ := os.ReadFile(dir + "/node.log")
			t.Logf("log:\n%s", b)
		}
	}()
	conn, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeBatond{t: t, id: 7, conn: conn, rejected: map[uint64]wire.Rejected{}, cookieIndex: map[uint64]uint64{},
		reads: map[uint64]wire.Message{}, replies: map[uint64]wire.Message{}, outcomes: make(chan outcome, 1024)}
	f.send(&wire.Hello{})
	go f.readLoop()
	nd := &node{id: 7, b: f}
	waitFor(t, 10*time.Second, "the single node to lead", f.isLeader)
	proposeMany(t, nd, datas("solo", 50), 8, 10*time.Second)
	if rs, ok := f.read(t, 1, 5*time.Second).(*wire.ReadState); !ok || rs.Index < 50 {
		t.Fatalf("READ_INDEX: %#v", rs)
	}
	if len(f.snapshotState()) != 50 {
		t.Fatalf("%d entries", len(f.snapshotState()))
	}
	f.close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("baton-raftd did not exit when the socketpair closed")
	}
	if errs := f.errors(); len(errs) > 0 {
		t.Fatal(errs)
	}
}

// A leader cut off from its followers keeps accepting proposals until
// check-quorum makes it step down; those proposals are then rejected as
// "maybe committed". Whether they commit depends on who wins the next
// election; if one does, it is delivered once, with cookie 0.
func TestLeaderWithoutQuorumRejectsAsMaybeCommitted(t *testing.T) {
	c := newCluster(t, 3)
	l := c.leader()
	proposeMany(t, l, datas("pre", 10), 4, 10*time.Second)
	fs := c.followers(l)
	resumed := false
	resume := func() {
		if !resumed {
			for _, f := range fs {
				syscall.Kill(f.cmd.Process.Pid, syscall.SIGCONT)
			}
			resumed = true
		}
	}
	defer resume()
	for _, f := range fs {
		pause(t, f.cmd.Process.Pid)
	}
	var cookies []uint64
	for i := 0; i < 5; i++ {
		cookieSeq++
		cookies = append(cookies, cookieSeq)
		l.b.send(&wire.Propose{Cookie: cookieSeq, Data: []byte(fmt.Sprintf("orphan-%d", i))})
	}
	waitFor(t, 10*time.Second, "check-quorum to depose the cut-off leader and reject its proposals", func() bool {
		n := 0
		l.b.with(func() {
			for _, c := range cookies {
				if r, ok := l.b.rejected[c]; ok {
					if !r.MaybeCommitted || r.Code != wire.CodeUnavailable {
						t.Errorf("rejection %+v: want UNAVAILABLE, maybe committed", r)
					}
					n++
				}
				if _, ok := l.b.cookieIndex[c]; ok {
					t.Errorf("cookie %d committed with both followers stopped", c)
					n = len(cookies) + 1 // ends the wait
				}
			}
		})
		return n > len(cookies) || (n == len(cookies) && !l.b.isLeader())
	})
	if t.Failed() {
		return
	}
	resume()
	// Leadership may move more than once right after the resume.
	c.proposeOnLeader("after", 15*time.Second)
	nl := c.waitLeader(10*time.Second, 0)
	state := c.waitConverged(10 * time.Second)
	committed := 0
	for i := 0; i < 5; i++ {
		n := 0
		for _, e := range state {
			if e.Data == fmt.Sprintf("orphan-%d", i) {
				n++
			}
		}
		if n > 1 {
			t.Fatalf("orphan-%d committed %d times", i, n)
		}
		committed += n
	}
	t.Logf("new leader %d (old %d); %d of 5 maybe-committed proposals committed (with cookie 0)", nl.id, l.id, committed)
}

// A leader may remove itself: the change applies, it steps down, and the
// other two elect a leader between them.
func TestLeaderRemovesItself(t *testing.T) {
	c := newCluster(t, 3)
	l := c.leader()
	proposeWait(t, l, "x", 5*time.Second)
	r := l.b.request(t, &wire.RemoveMember{ReqID: 31, ID: l.id}, 31, 10*time.Second).(*wire.Reply)
	if r.Code != wire.CodeOK || len(r.Members) != 2 {
		t.Fatalf("REMOVE_MEMBER of the leader itself: %+v", r)
	}
	nl := c.waitLeader(10*time.Second, l.id)
	waitFor(t, 5*time.Second, "the removed leader to stop leading", func() bool { return !l.b.isLeader() })
	proposeMany(t, nl, datas("two", 5), 4, 10*time.Second)
	c.kill(l)
	c.waitConverged(10 * time.Second)
}

// Faults under load: each round sends a burst of proposals to the leader and
// then kills the leader, kills a follower, or pauses the leader past the
// election timeout; the cluster must keep committing, every node must end
// with the same sequence, and no proposal may commit twice (the fakes also
// check order, exactly-once cookies and no commit after a rejection).
func TestRandomFaultsUnderLoad(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("RAFTD_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	rounds := 8
	if testing.Short() {
		rounds = 3
	}
	t.Logf("seed %d (RAFTD_SEED to replay)", seed)
	rng := rand.New(rand.NewSource(seed))
	c := newCluster(t, 3)
	sent := 0
	for r := 0; r < rounds; r++ {
		l := c.waitLeader(10*time.Second, 0)
		for i := 0; i < 20; i++ {
			cookieSeq++
			l.b.send(&wire.Propose{Cookie: cookieSeq, Data: []byte(fmt.Sprintf("burst-%d-%d", r, i))})
			sent++
		}
		var killed *node
		switch fault := rng.Intn(3); fault {
		case 0:
			t.Logf("round %d: kill -9 leader %d", r, l.id)
			killed = l
		case 1:
			killed = c.followers(l)[rng.Intn(2)]
			t.Logf("round %d: kill -9 follower %d", r, killed.id)
		case 2:
			t.Logf("round %d: SIGSTOP leader %d for 1.5 s", r, l.id)
			syscall.Kill(l.cmd.Process.Pid, syscall.SIGSTOP)
			time.AfterFunc(1500*time.Millisecond, func() { syscall.Kill(l.cmd.Process.Pid, syscall.SIGCONT) })
		}
		if killed != nil {
			time.Sleep(time.Duration(rng.Intn(20)) * time.Millisecond)
			c.kill(killed)
		}
		c.proposeOnLeader(fmt.Sprintf("marker-%d", r), 20*time.Second)
		if killed != nil {
			c.start(killed, nil, 0)
		} else {
			time.Sleep(1600 * time.Millisecond) // let the paused node wake
		}
		c.waitConverged(15 * time.Second)
	}
	state := c.waitConverged(15 * time.Second)
	seen := map[string]int{}
	for _, e := range state {
		seen[e.Data]++
		if seen[e.Data] > 1 && strings.HasPrefix(e.Data, "burst-") {
			t.Fatalf("%q committed twice", e.Data)
		}
	}
	bursts := 0
	for d := range seen {
		if strings.HasPrefix(d, "burst-") {
			bursts++
		}
	}
	for r := 0; r < rounds; r++ {
		if seen[fmt.Sprintf("marker-%d", r)] == 0 {
			t.Fatalf("marker-%d never committed", r)
		}
	}
	t.Logf("%d rounds: %d of %d burst proposals committed, %d entries in all", rounds, bursts, sent, len(state))
}

// A failed WAL write is fatal and never retried: the node sends FATAL and
// exits 1; the others go on; restarted (with a working disk) it catches up.
func TestWALWriteFailureIsFatal(t *testing.T) {
	c := newCluster(t, 3)
	l := c.leader()
	f := c.followers(l)[0]
	c.kill(f)
	f.env = []string{"BATON_RAFTD_FAULT_WAL_AFTER=3"}
	c.start(f, nil, 0)
	f.env = nil
	// Propose until the follower has taken more than 3 batches: it gets none
	// until the leader has dialled it again, which on a loaded machine can
	// outlast any fixed number of rounds (the likely cause of the one
	// failure seen with 20 rounds: they were over before it had its first
	// batch, and then nothing more came to fail on).
	proposing := time.Now().Add(30 * time.Second)
	for i := 0; f.running() && time.Now().Before(proposing); i++ {
		proposeMany(t, l, datas(fmt.Sprintf("w%d", i), 4), 4, 10*time.Second)
	}
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		t.Fatal("baton-raftd still runs 30 s into proposals after its WAL write was to fail")
	}
	if code := f.exit.ExitCode(); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	f.b.with(func() {
		if f.b.fatal == nil || !strings.Contains(f.b.fatal.Message, "injected WAL write failure") {
			t.Fatalf("FATAL: %+v", f.b.fatal)
		}
	})
	f.b.close()
	proposeMany(t, l, datas("two-left", 10), 4, 10*time.Second)
	c.start(f, nil, 0)
	c.waitConverged(10 * time.Second)
}
