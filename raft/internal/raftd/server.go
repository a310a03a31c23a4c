// Package raftd is baton-raftd: one etcd raft node that replicates batond's
// log entries, persists them with etcd's WAL and snapshot packages, talks to
// its peers over TCP and to exactly one batond over a local stream socket
// (PROTOCOL.md).
//
// Threading: one goroutine (the loop) owns the raft RawNode, the in-memory
// log, the WAL and every field of server. Other goroutines (the batond
// reader, the outbox writer, the transport) talk to it through channels.
package raftd

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"syscall"
	"time"

	"github.com/baton/baton/raft/wire"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// Exit codes of baton-raftd.
const (
	ExitFatal      = 1 // unrecoverable error (after FATAL when batond is connected)
	ExitUsage      = 2 // bad flags
	ExitBatondGone = 3 // the batond socket closed or broke
)

// maxProposal is the largest PROPOSE payload accepted.
const maxProposal = 64 << 20

// epoch is the membership in force from a log index on (a conf change or a
// snapshot). COMPACT needs the one in force at its index.
type epoch struct {
	index   uint64
	cs      *raftpb.ConfState
	members []wire.Member
}

type pendingRead struct {
	deadline time.Time
	index    uint64
	ready    bool // index is known (raft answered)
}

type pendingAdmin struct {
	reqID    uint64
	deadline time.Time
}

type pendingTransfer struct {
	reqID    uint64
	to       uint64
	deadline time.Time
}

type leaderView struct {
	term     uint64
	lead     uint64
	isLeader bool
}

type server struct {
	cfg         Config
	log         *leveledLogger
	incarnation uint64

	disk *diskStorage
	mem  *raft.MemoryStorage
	rn   *raft.RawNode
	tr   *transport
	out  *outbox
	inc  chan wire.Message

	hints     map[uint64]string // peer addresses from --initial-cluster
	members   map[uint64]wire.Member
	confState *raftpb.ConfState
	epochs    []epoch

	ready         bool   // READY was sent: the loop runs
	batondApplied uint64 // batond's state covers entries <= this: not delivered again
	applied       uint64 // every committed entry <= applied was handled
	appliedTerm   uint64
	lastCommand   uint64 // index of the last applied entry batond sees (COMMITTED or a snapshot)
	snapIndex     uint64
	confAppended  uint64 // highest index of a conf-change entry in the log
	removed       bool   // this node was removed from the cluster

	leaderTerm   uint64 // term in which this node is raft leader, 0 if not leader
	view         leaderView
	pending      map[uint64]struct{} // cookies proposed in leaderTerm, not yet committed
	pendingOrder []uint64
	reads        map[uint64]*pendingRead
	admin        *pendingAdmin
	transfer     *pendingTransfer
	snapAsked    time.Time // when SNAPSHOT_REQUEST was last sent
	sendReports  []report  // transport reports for the Ready being handled

	// Fast failover (see leaderGone).
	deadc         chan uint64 // a probe found the leader's peer port closed
	campaignTimer *time.Timer
	campaignC     <-chan time.Time
	campaignTerm  uint64
}

// raftStorage is the log raft reads: the in-memory log, except that a
// snapshot older than the last membership change is not handed out. Raft
// asks for a snapshot only to send it to a member whose entries were
// compacted away; a member added after the snapshot would refuse it (it is
// not in the snapshot's ConfState), so baton-raftd asks batond for a fresh
// one and raft retries later (as it does for ErrSnapshotTemporarilyUnavailable).
// Called on the loop goroutine only (raft runs there).
type raftStorage struct {
	*raft.MemoryStorage
	s *server
}

func (r *raftStorage) Snapshot() (*raftpb.Snapshot, error) {
	sn, err := r.MemoryStorage.Snapshot()
	if err != nil {
		return sn, err
	}
	if !sameConf(sn.GetMetadata().GetConfState(), r.s.confState) {
		r.s.requestSnapshot()
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	return sn, nil
}

func sameConf(a, b *raftpb.ConfState) bool {
	set := func(cs *raftpb.ConfState) string {
		v := append([]uint64(nil), cs.GetVoters()...)
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		l := append([]uint64(nil), cs.GetLearners()...)
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		return fmt.Sprint(v, l)
	}
	return set(a) == set(b)
}

// requestSnapshot asks batond for a COMPACT at its applied index, at most
// once per election timeout.
func (s *server) requestSnapshot() {
	if time.Since(s.snapAsked) < s.electionTimeout() {
		return
	}
	s.snapAsked = time.Now()
	s.log.Infof("the raft snapshot (index %d) predates a membership change; asking batond for a new one", s.snapIndex)
	s.out.push(&wire.SnapshotRequest{MinIndex: s.applied})
}

func (s *server) electionTimeout() time.Duration {
	return s.cfg.Tick * time.Duration(s.cfg.ElectionTicks)
}

// Run runs baton-raftd until batond goes away (it then exits the process) or
// an unrecoverable error, which it returns after telling batond (FATAL).
func Run(cfg Config) error {
	level, err := parseLevel(cfg.LogLevel)
	if err != nil {
		return err
	}
	s := &server{
		cfg:     cfg,
		log:     newLogger(cfg.ID, level),
		hints:   map[uint64]string{},
		members: map[uint64]wire.Member{},
		pending: map[uint64]struct{}{},
		reads:   map[uint64]*pendingRead{},
		inc:     make(chan wire.Message, 1024),
		deadc:   make(chan uint64, 8),
	}
	var b [8]byte
	rand.Read(b[:])
	s.incarnation = binary.LittleEndian.Uint64(b[:]) | 1
	for _, m := range cfg.InitialCluster {
		s.hints[m.ID] = m.PeerAddr
	}
	err = s.run(newZap(level))
	if err != nil && s.out != nil {
		s.out.push(&wire.Fatal{Message: err.Error()})
		s.out.waitEmpty(2 * time.Second)
	}
	return err
}

func (s *server) run(lg *zap.Logger) error {
	disk, rec, err := openStorage(lg, s.cfg.DataDir, s.cfg.ID)
	if err != nil {
		return err
	}
	s.disk = disk
	defer disk.close()
	if rec.fresh {
		if len(s.cfg.InitialCluster) == 0 {
			return errors.New("a new node needs --initial-cluster")
		}
		if _, ok := s.cfg.self(); !ok && !s.cfg.Join {
			return fmt.Errorf("--initial-cluster does not name this node (%d)", s.cfg.ID)
		}
	} else if s.cfg.Join {
		s.log.Infof("data dir %s holds a WAL: restarting; --join is ignored", s.cfg.DataDir)
	}
	s.mem, err = loadMemory(rec)
	if err != nil {
		return fmt.Errorf("load raft log: %w", err)
	}
	if err := s.recoverMembership(rec); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", s.cfg.PeerListen)
	if err != nil {
		return fmt.Errorf("peer listener: %w", err)
	}
	s.tr = newTransport(s.cfg.ID, ln, s.log)
	defer s.tr.stop()

	conn, err := s.connectBatond()
	if err != nil {
		return err
	}
	hello, err := readHello(conn)
	if err != nil {
		return err
	}
	s.out = newOutbox(conn, func(err error) {
		s.log.Errorf("writing to batond: %v; exiting", err)
		os.Exit(ExitBatondGone)
	})
	go s.readBatond(conn)

	if err := s.startRaft(rec, hello.AppliedIndex); err != nil {
		return err
	}
	// Replay: no ticks and no peer messages yet, so the only work raft has
	// is handing back the committed entries it recovered.
	for s.rn.HasReady() {
		if err := s.handleReady(); err != nil {
			return err
		}
	}
	if hs := rec.hard; s.applied < hs.GetCommit() {
		return fmt.Errorf("replay stopped at index %d before the recovered commit index %d", s.applied, hs.GetCommit())
	}
	s.ready = true
	s.out.push(&wire.Ready{LastCommitted: max(s.applied, s.batondApplied), NodeID: s.cfg.ID, Members: sortedMembers(s.members)})
	s.log.Infof("ready: applied %d, batond covers %d, %d members", s.applied, s.batondApplied, len(s.members))
	s.tr.setPeers(s.peerAddrs())
	s.tr.start()
	s.updateLeadership()
	return s.loop()
}

// recoverMembership reads the members from the snapshot envelope and notes
// the conf-change entries already in the log (their effect is applied when
// raft hands them back during replay).
func (s *server) recoverMembership(rec *recovered) error {
	if rec.snapshot != nil && !raft.IsEmptySnap(rec.snapshot) {
		ms, _, err := decodeSnapshot(rec.snapshot.GetData())
		if err != nil {
			return err
		}
		for _, m := range ms {
			s.members[m.ID] = m
		}
		s.confState = rec.snapshot.GetMetadata().GetConfState()
		s.snapIndex = rec.snapshot.GetMetadata().GetIndex()
		s.applied = s.snapIndex
		s.lastCommand = s.snapIndex
		s.appliedTerm = rec.snapshot.GetMetadata().GetTerm()
		s.epochs = []epoch{{index: s.snapIndex, cs: s.confState, members: sortedMembers(s.members)}}
		if _, ok := s.members[s.cfg.ID]; !ok && len(s.members) > 0 {
			s.removed = true
		}
	}
	for _, e := range rec.entries {
		if e.GetType() == raftpb.EntryConfChange {
			s.confAppended = max(s.confAppended, e.GetIndex())
		}
	}
	return nil
}

// connectBatond accepts the one batond connection (--socket) or adopts the
// inherited one (--socket-fd).
func (s *server) connectBatond() (net.Conn, error) {
	if s.cfg.SocketFD >= 0 {
		f := os.NewFile(uintptr(s.cfg.SocketFD), "batond-socket")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("--socket-fd %d: %w", s.cfg.SocketFD, err)
		}
		return c, nil
	}
	if fi, err := os.Lstat(s.cfg.SocketPath); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(s.cfg.SocketPath) // a stale socket of an earlier run
	}
	ln, err := net.Listen("unix", s.cfg.SocketPath)
	if err != nil {
		return nil, fmt.Errorf("--socket %s: %w", s.cfg.SocketPath, err)
	}
	os.Chmod(s.cfg.SocketPath, 0o600)
	defer os.Remove(s.cfg.SocketPath)
	defer ln.Close()
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	ul.SetDeadline(time.Now().Add(acceptTimeout))
	c, err := ul.Accept()
	if err != nil {
		return nil, fmt.Errorf("no batond connected to %s within %v: %w", s.cfg.SocketPath, acceptTimeout, err)
	}
	return c, nil
}

const acceptTimeout = 60 * time.Second

func readHello(c net.Conn) (*wire.Hello, error) {
	c.SetReadDeadline(time.Now().Add(acceptTimeout))
	m, err := wire.ReadFrame(c)
	if err != nil {
		return nil, fmt.Errorf("reading HELLO: %w", err)
	}
	c.SetReadDeadline(time.Time{})
	h, ok := m.(*wire.Hello)
	if !ok {
		return nil, fmt.Errorf("%w: first message is type 0x%02x, not HELLO", wire.ErrProtocol, m.Type())
	}
	return h, nil
}

// readBatond feeds batond's requests to the loop. When the socket closes,
// batond is gone and so is this process's reason to exist.
func (s *server) readBatond(c net.Conn) {
	for {
		m, err := wire.ReadFrame(c)
		if err != nil {
			if errors.Is(err, wire.ErrProtocol) {
				s.log.Errorf("batond: %v; exiting", err)
				s.out.push(&wire.Fatal{Message: err.Error()})
				s.out.waitEmpty(time.Second)
				os.Exit(ExitFatal)
			}
			s.log.Warningf("batond socket closed (%v); exiting", err)
			os.Exit(ExitBatondGone)
		}
		if m.Type() == wire.THello {
			s.out.push(&wire.Fatal{Message: "protocol error: a second HELLO"})
			s.out.waitEmpty(time.Second)
			os.Exit(ExitFatal)
		}
		s.inc <- m
	}
}

// startRaft creates the raft node over the recovered log and sends batond
// the raft snapshot first if it is newer than batond's state.
func (s *server) startRaft(rec *recovered, helloApplied uint64) error {
	last, _ := s.mem.LastIndex()
	if helloApplied > last && helloApplied > s.snapIndex {
		return fmt.Errorf("batond's state covers index %d but this node's raft log ends at %d: wrong --data-dir, or the raft data was lost", helloApplied, max(last, s.snapIndex))
	}
	s.batondApplied = helloApplied
	if s.snapIndex > helloApplied {
		_, data, _ := decodeSnapshot(rec.snapshot.GetData())
		s.out.push(&wire.InstallSnapshot{Index: s.snapIndex, Term: rec.snapshot.GetMetadata().GetTerm(), Data: data})
		s.batondApplied = s.snapIndex
	}
	c := &raft.Config{
		ID:                        s.cfg.ID,
		ElectionTick:              s.cfg.ElectionTicks,
		HeartbeatTick:             s.cfg.HeartbeatTicks,
		Storage:                   &raftStorage{MemoryStorage: s.mem, s: s},
		MaxSizePerMsg:             1 << 20,
		MaxCommittedSizePerReady:  8 << 20,
		MaxInflightMsgs:           256,
		MaxUncommittedEntriesSize: 256 << 20,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		DisableProposalForwarding: true,
		StepDownOnRemoval:         true,
		Logger:                    s.log,
	}
	rn, err := raft.NewRawNode(c)
	if err != nil {
		return fmt.Errorf("raft: %w", err)
	}
	s.rn = rn
	if rec.fresh && !s.cfg.Join {
		var peers []raft.Peer
		for _, m := range s.cfg.InitialCluster {
			peers = append(peers, raft.Peer{ID: m.ID, Context: encodeMemberContext(memberContext{ID: m.ID, PeerAddr: m.PeerAddr, ClientAddr: m.ClientAddr})})
		}
		if err := rn.Bootstrap(peers); err != nil {
			return fmt.Errorf("raft bootstrap: %w", err)
		}
	}
	return nil
}

// peerAddrs is the transport's address book: the members' peer addresses,
// or the --initial-cluster hints while no membership is known (a joining node).
func (s *server) peerAddrs() map[uint64]string {
	out := map[uint64]string{}
	if len(s.members) == 0 {
		for id, a := range s.hints {
			out[id] = a
		}
		return out
	}
	for id, m := range s.members {
		out[id] = m.PeerAddr
	}
	return out
}

func (s *server) loop() error {
	ticker := time.NewTicker(s.cfg.Tick)
	defer ticker.Stop()
	for {
		var err error
		select {
		case <-ticker.C:
			s.tick()
		case m := <-s.tr.recvc:
			s.step(m)
		case r := <-s.tr.reportc:
			s.report(r)
		case m := <-s.inc:
			err = s.handleRequest(m)
		case id := <-s.tr.downc:
			s.peerDown(id)
		case id := <-s.deadc:
			s.leaderGone(id)
		case <-s.campaignC:
			s.campaignC = nil
			s.fastCampaign()
		}
		// Take whatever else is already waiting before handling raft's
		// Ready, so that a burst of proposals shares one WAL fsync.
	drain:
		for i := 0; i < 1024 && err == nil; i++ {
			select {
			case m := <-s.tr.recvc:
				s.step(m)
			case r := <-s.tr.reportc:
				s.report(r)
			case m := <-s.inc:
				err = s.handleRequest(m)
			default:
				break drain
			}
		}
		if err != nil {
			return err
		}
		for s.rn.HasReady() {
			if err := s.handleReady(); err != nil {
				return err
			}
		}
		s.updateLeadership()
		s.flushReads()
	}
}

func (s *server) tick() {
	if !s.removed {
		s.rn.Tick()
	}
	now := time.Now()
	for ctx, r := range s.reads {
		if now.After(r.deadline) {
			delete(s.reads, ctx)
			s.rejectRead(ctx, wire.CodeUnavailable, "read index timed out (no quorum confirmed leadership)")
		}
	}
	if s.admin != nil && now.After(s.admin.deadline) {
		s.reply(s.admin.reqID, wire.CodeDeadlineExceeded, "membership change not applied in time; outcome unknown", nil)
		s.admin = nil
	}
	if s.transfer != nil && now.After(s.transfer.deadline) {
		s.reply(s.transfer.reqID, wire.CodeDeadlineExceeded, fmt.Sprintf("leadership did not move to %d in time", s.transfer.to), nil)
		s.transfer = nil
	}
}

// Fast failover. A leader whose process died (kill -9, crash, exit) closes
// its TCP connections at once, and its peer port then refuses connections.
// A follower that sees both forgets the leader (raft's ForgetLeader, made
// for such an external failure detector) and, after a delay by rank, starts
// a (pre-)election. Safety is raft's: a candidate still needs a majority, and
// a follower that still hears from the leader rejects its pre-vote, so one
// wrong detector cannot disrupt a live leader. A paused or cut-off leader
// keeps its connections open and is replaced by the ordinary election
// timeout.

// peerDown: peer id's connection to this node ended; if it is the leader,
// probe its peer port off the loop.
func (s *server) peerDown(id uint64) {
	st := s.rn.BasicStatus()
	if !s.cfg.FastFailover || s.removed || st.RaftState != raft.StateFollower || st.Lead != id {
		return
	}
	addr := s.members[id].PeerAddr
	if addr == "" {
		return
	}
	go func() {
		// A dying process may linger a moment: look a few times.
		for _, wait := range []time.Duration{0, 50 * time.Millisecond, 150 * time.Millisecond} {
			time.Sleep(wait)
			if peerProcessGone(addr) {
				select {
				case s.deadc <- id:
				default:
				}
				return
			}
		}
	}()
}

// peerProcessGone reports whether nothing listens at addr any more. A dying
// process may still complete a TCP handshake for a moment (its listener is
// closed after some of its connections), so a connection that the peer
// resets or closes within 50 ms counts as gone too; one that stays open
// means a live process (which waits for our hello).
func peerProcessGone(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var b [1]byte
	_, err = c.Read(b[:])
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return err != nil
}

// leaderGone: the leader's process is gone. Forget it, so that this node
// grants pre-votes at once, and campaign after 30 ms plus 150 ms per rank
// (rank: position of this node's id among the other surviving members), so
// that the followers do not split the vote.
func (s *server) leaderGone(id uint64) {
	st := s.rn.BasicStatus()
	if st.RaftState != raft.StateFollower || st.Lead != id {
		return
	}
	s.log.Infof("leader %d is gone (connection closed, peer port refuses connections): forgetting it", id)
	if err := s.rn.ForgetLeader(); err != nil {
		s.log.Warningf("forget leader: %v", err)
		return
	}
	rank := 0
	for mid := range s.members {
		if mid != id && mid < s.cfg.ID {
			rank++
		}
	}
	s.campaignTerm = st.HardState.GetTerm()
	s.campaignTimer = time.NewTimer(30*time.Millisecond + time.Duration(rank)*150*time.Millisecond)
	s.campaignC = s.campaignTimer.C
}

func (s *server) fastCampaign() {
	st := s.rn.BasicStatus()
	if st.RaftState == raft.StateFollower && st.Lead == raft.None && st.HardState.GetTerm() == s.campaignTerm && !s.removed {
		s.log.Infof("campaigning after the leader's process went away")
		if err := s.rn.Campaign(); err != nil {
			s.log.Warningf("campaign: %v", err)
		}
	}
}

func (s *server) step(m *raftpb.Message) {
	if err := s.rn.Step(m); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
		s.log.Debugf("step %v from %d: %v", m.GetType(), m.GetFrom(), err)
	}
}

// send hands messages to the transport; raft hears about the ones it
// dropped after this Ready is advanced.
func (s *server) send(msgs []*raftpb.Message) {
	s.sendReports = append(s.sendReports, s.tr.send(msgs)...)
}

func (s *server) report(r report) {
	switch r.kind {
	case reportUnreachable:
		s.rn.ReportUnreachable(r.id)
	case reportSnapshotOK:
		s.rn.ReportSnapshot(r.id, raft.SnapshotFinish)
	case reportSnapshotFailed:
		s.rn.ReportSnapshot(r.id, raft.SnapshotFailure)
	}
}

// handleReady persists, sends and applies one raft Ready, in the order raft
// requires: snapshot file and WAL (fsynced) before messages go out and before
// any committed entry is handed to batond.
func (s *server) handleReady() error {
	rd := s.rn.Ready()
	// A leader may send before its own write completes (raft thesis
	// 10.2.1, as etcd does): its own copy counts towards the commit quorum
	// only after Advance, i.e. after the fsync below. Followers and
	// candidates must persist first (votes, acknowledged entries).
	leader := s.rn.BasicStatus().RaftState == raft.StateLeader
	if leader {
		s.send(rd.Messages)
	}
	hasSnap := !raft.IsEmptySnap(rd.Snapshot)
	if hasSnap {
		// The snapshot file and its WAL marker first, so that a restart
		// after a crash here finds a consistent pair (as etcd does).
		if err := s.disk.saveSnap(rd.Snapshot); err != nil {
			return fmt.Errorf("save raft snapshot %d: %w", rd.Snapshot.GetMetadata().GetIndex(), err)
		}
	}
	// A failed write or fsync is fatal and never retried: the kernel may
	// have dropped the pages it could not write.
	if err := s.disk.save(rd.HardState, rd.Entries); err != nil {
		return fmt.Errorf("WAL write or fsync failed: %w", err)
	}
	if hasSnap {
		if err := s.disk.sync(); err != nil {
			return fmt.Errorf("WAL fsync failed: %w", err)
		}
		if err := s.mem.ApplySnapshot(rd.Snapshot); err != nil {
			return fmt.Errorf("apply raft snapshot: %w", err)
		}
		if err := s.installSnapshot(rd.Snapshot); err != nil {
			return err
		}
		if err := s.disk.release(rd.Snapshot.GetMetadata().GetIndex()); err != nil {
			return fmt.Errorf("release WAL files: %w", err)
		}
	}
	if err := s.mem.Append(rd.Entries); err != nil {
		return fmt.Errorf("append to raft log: %w", err)
	}
	for _, e := range rd.Entries {
		if e.GetType() == raftpb.EntryConfChange || e.GetType() == raftpb.EntryConfChangeV2 {
			s.confAppended = max(s.confAppended, e.GetIndex())
		}
	}
	if !leader {
		s.send(rd.Messages)
	}
	if err := s.applyEntries(rd.CommittedEntries); err != nil {
		return err
	}
	for _, rs := range rd.ReadStates {
		if len(rs.RequestCtx) != 8 {
			continue
		}
		if r := s.reads[binary.LittleEndian.Uint64(rs.RequestCtx)]; r != nil {
			r.index, r.ready = rs.Index, true
		}
	}
	s.rn.Advance(rd)
	for _, r := range s.sendReports {
		s.report(r)
	}
	s.sendReports = s.sendReports[:0]
	return nil
}

// installSnapshot adopts a snapshot received from the leader.
func (s *server) installSnapshot(sn *raftpb.Snapshot) error {
	idx, term := sn.GetMetadata().GetIndex(), sn.GetMetadata().GetTerm()
	ms, data, err := decodeSnapshot(sn.GetData())
	if err != nil {
		return err
	}
	s.members = map[uint64]wire.Member{}
	for _, m := range ms {
		s.members[m.ID] = m
	}
	s.confState = sn.GetMetadata().GetConfState()
	s.epochs = []epoch{{index: idx, cs: s.confState, members: ms}}
	s.snapIndex, s.applied, s.appliedTerm, s.lastCommand = idx, idx, term, idx
	s.log.Infof("installing raft snapshot at index %d term %d (%d bytes)", idx, term, len(data))
	if idx > s.batondApplied {
		s.out.push(&wire.InstallSnapshot{Index: idx, Term: term, Data: data})
		s.batondApplied = idx
	}
	if s.ready {
		s.out.push(&wire.Membership{Index: idx, Members: ms})
		s.tr.setPeers(s.peerAddrs())
	}
	if _, ok := s.members[s.cfg.ID]; !ok && len(s.members) > 0 {
		s.removed = true
	}
	return nil
}

// applyEntries hands committed entries to batond in index order.
func (s *server) applyEntries(ents []*raftpb.Entry) error {
	for _, e := range ents {
		idx := e.GetIndex()
		if idx <= s.applied {
			continue
		}
		switch e.GetType() {
		case raftpb.EntryNormal:
			if len(e.GetData()) == 0 {
				break // raft's no-op at the start of a term
			}
			s.lastCommand = idx
			o, data, err := decodeEntry(e.GetData())
			if err != nil {
				return fmt.Errorf("committed entry %d: %w", idx, err)
			}
			var cookie uint64
			if o.node == s.cfg.ID && o.incarnation == s.incarnation {
				if _, ok := s.pending[o.cookie]; ok {
					cookie = o.cookie
					delete(s.pending, o.cookie)
				}
			}
			if idx > s.batondApplied {
				s.out.push(&wire.Committed{Index: idx, Term: e.GetTerm(), Cookie: cookie, Data: data})
			}
		case raftpb.EntryConfChange:
			if err := s.applyConfChange(idx, e.GetData()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("committed entry %d has type %v, which baton-raftd never proposes", idx, e.GetType())
		}
		s.applied, s.appliedTerm = idx, e.GetTerm()
	}
	s.trimPendingOrder()
	return nil
}

func (s *server) applyConfChange(idx uint64, data []byte) error {
	var cc raftpb.ConfChange
	if err := proto.Unmarshal(data, &cc); err != nil {
		return fmt.Errorf("conf change at %d: %w", idx, err)
	}
	s.confState = s.rn.ApplyConfChange(&cc)
	ctx, err := decodeMemberContext(cc.GetContext())
	if err != nil {
		s.log.Warningf("conf change at %d has an unreadable context: %v", idx, err)
	}
	id := cc.GetNodeId()
	switch cc.GetType() {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeUpdateNode:
		s.members[id] = wire.Member{ID: id, PeerAddr: ctx.PeerAddr, ClientAddr: ctx.ClientAddr}
	case raftpb.ConfChangeRemoveNode:
		delete(s.members, id)
		if id == s.cfg.ID {
			s.removed = true
			s.log.Infof("this node was removed from the cluster at index %d; it stops campaigning", idx)
		}
	}
	ms := sortedMembers(s.members)
	s.epochs = append(s.epochs, epoch{index: idx, cs: s.confState, members: ms})
	if s.ready {
		s.out.push(&wire.Membership{Index: idx, Members: ms})
		s.tr.setPeers(s.peerAddrs())
	}
	if s.admin != nil && ctx.Origin == s.cfg.ID && ctx.Incarnation == s.incarnation && ctx.ReqID == s.admin.reqID {
		s.reply(s.admin.reqID, wire.CodeOK, "", ms)
		s.admin = nil
	}
	return nil
}

func (s *server) trimPendingOrder() {
	i := 0
	for i < len(s.pendingOrder) {
		if _, ok := s.pending[s.pendingOrder[i]]; ok {
			break
		}
		i++
	}
	s.pendingOrder = s.pendingOrder[i:]
	if len(s.pending) == 0 {
		s.pendingOrder = nil
	}
}

// updateLeadership reports changes of term, leader, or this node's
// readiness to lead, and fails what a lost leadership leaves pending.
//
// A new leader reports IsLeader only once it has applied an entry of its own
// term (the no-op raft appends on election): by then every entry of earlier
// terms was handed to batond, so batond's state is complete before it
// stamps time or answers as leader.
func (s *server) updateLeadership() {
	st := s.rn.BasicStatus()
	term := st.HardState.GetTerm()
	isLeader := st.RaftState == raft.StateLeader
	if s.leaderTerm != 0 && (!isLeader || term != s.leaderTerm) {
		s.loseLeadership()
	}
	if isLeader {
		s.leaderTerm = term
	} else {
		s.leaderTerm = 0
	}
	v := leaderView{term: term, lead: st.Lead, isLeader: isLeader && s.appliedTerm == term && !s.removed}
	if v != s.view {
		s.view = v
		s.out.push(&wire.Leadership{Term: v.term, LeaderID: v.lead, LeaderClientAddr: s.clientAddr(v.lead), IsLeader: v.isLeader})
		s.log.Infof("leadership: term %d leader %d this node leads: %v", v.term, v.lead, v.isLeader)
	}
	if s.transfer != nil && st.Lead == s.transfer.to {
		s.reply(s.transfer.reqID, wire.CodeOK, "", nil)
		s.transfer = nil
	}
}

// loseLeadership fails every request that needed this node to stay leader.
// A proposal may still commit (a new leader may have it): it is rejected as
// "maybe committed" and, if it commits, delivered with cookie 0.
func (s *server) loseLeadership() {
	lead := s.rn.BasicStatus().Lead
	for _, c := range s.pendingOrder {
		if _, ok := s.pending[c]; ok {
			s.out.push(&wire.Rejected{Cookie: c, Code: wire.CodeUnavailable, MaybeCommitted: true,
				LeaderID: lead, LeaderClientAddr: s.clientAddr(lead),
				Message: "leadership lost; outcome unknown: the entry may still commit (then it is delivered with cookie 0)"})
		}
	}
	s.pending = map[uint64]struct{}{}
	s.pendingOrder = nil
	for ctx, r := range s.reads {
		if !r.ready {
			delete(s.reads, ctx)
			s.rejectRead(ctx, wire.CodeUnavailable, "leadership lost before the read index was confirmed")
		}
	}
	if s.admin != nil {
		s.reply(s.admin.reqID, wire.CodeUnavailable, "leadership lost; outcome of the membership change unknown", nil)
		s.admin = nil
	}
}

// flushReads answers reads whose index batond has reached.
func (s *server) flushReads() {
	for ctx, r := range s.reads {
		if r.ready && r.index <= s.applied {
			delete(s.reads, ctx)
			s.out.push(&wire.ReadState{Ctx: ctx, Index: r.index})
		}
	}
}

func (s *server) clientAddr(id uint64) string {
	return s.members[id].ClientAddr
}

func (s *server) reply(reqID uint64, code wire.Code, msg string, members []wire.Member) {
	lead := s.rn.BasicStatus().Lead
	s.out.push(&wire.Reply{ReqID: reqID, Code: code, LeaderID: lead, LeaderClientAddr: s.clientAddr(lead), Message: msg, Members: members})
}

func (s *server) rejectRead(ctx uint64, code wire.Code, msg string) {
	lead := s.rn.BasicStatus().Lead
	s.out.push(&wire.ReadRejected{Ctx: ctx, Code: code, LeaderID: lead, LeaderClientAddr: s.clientAddr(lead), Message: msg})
}

// leading reports whether this node may take leader-only requests now: raft
// leader, in the term it announced to batond as leader.
func (s *server) leading() bool {
	st := s.rn.BasicStatus()
	return s.view.isLeader && st.RaftState == raft.StateLeader && st.HardState.GetTerm() == s.view.term
}

func (s *server) handleRequest(m wire.Message) error {
	switch m := m.(type) {
	case *wire.Propose:
		s.propose(m)
	case *wire.Compact:
		return s.compact(m)
	case *wire.ReadIndex:
		s.readIndex(m)
	case *wire.TransferLeadership:
		s.transferLeadership(m)
	case *wire.AddMember:
		s.changeMembers(m.ReqID, raftpb.ConfChangeAddNode, m.Member)
	case *wire.RemoveMember:
		s.changeMembers(m.ReqID, raftpb.ConfChangeRemoveNode, wire.Member{ID: m.ID})
	case *wire.ListMembers:
		s.reply(m.ReqID, wire.CodeOK, "", sortedMembers(s.members))
	case *wire.Status:
		s.status(m)
	default:
		return fmt.Errorf("%w: batond sent message type 0x%02x, which only baton-raftd sends", wire.ErrProtocol, m.Type())
	}
	return nil
}

func (s *server) propose(m *wire.Propose) {
	reject := func(code wire.Code, msg string) {
		lead := s.rn.BasicStatus().Lead
		s.out.push(&wire.Rejected{Cookie: m.Cookie, Code: code, LeaderID: lead, LeaderClientAddr: s.clientAddr(lead), Message: msg})
	}
	switch {
	case m.Cookie == 0:
		reject(wire.CodeInvalidArgument, "cookie 0 is reserved")
	case len(m.Data) > maxProposal:
		reject(wire.CodeInvalidArgument, fmt.Sprintf("entry of %d bytes exceeds %d", len(m.Data), maxProposal))
	case !s.leading():
		reject(wire.CodeUnavailable, "not the leader")
	default:
		if _, dup := s.pending[m.Cookie]; dup {
			reject(wire.CodeInvalidArgument, "cookie already pending")
			return
		}
		data := encodeEntry(entryOrigin{node: s.cfg.ID, incarnation: s.incarnation, cookie: m.Cookie}, m.Data)
		if err := s.rn.Propose(data); err != nil {
			// Not appended (a leadership transfer is under way, or too much
			// is uncommitted): it will never commit.
			reject(wire.CodeUnavailable, "proposal dropped by raft: "+err.Error())
			return
		}
		s.pending[m.Cookie] = struct{}{}
		s.pendingOrder = append(s.pendingOrder, m.Cookie)
	}
}

// compact stores batond's snapshot as the raft snapshot at m.Index and
// discards the raft log before m.Index - SnapshotCatchupEntries.
func (s *server) compact(m *wire.Compact) error {
	if m.Index > s.applied && m.Index <= s.batondApplied {
		// batond's state came from before a restart, and this node has not
		// yet relearned that the entries up to m.Index are committed.
		s.log.Infof("COMPACT at %d ignored: raft has applied only up to %d so far", m.Index, s.applied)
		return nil
	}
	if m.Index > s.applied {
		return fmt.Errorf("%w: COMPACT at index %d, beyond the last index handed to batond (%d)", wire.ErrProtocol, m.Index, s.applied)
	}
	index := m.Index
	if index >= s.lastCommand {
		// Only entries batond never sees (no-ops, membership changes) lie
		// between its state and the applied index: the state covers them
		// too. Snapshot at the applied index, so that a membership change
		// there is in the snapshot's ConfState (a member added by it will
		// accept only such a snapshot).
		index = s.applied
	}
	if index <= s.snapIndex {
		s.log.Infof("COMPACT at %d ignored: the raft snapshot is already at %d", index, s.snapIndex)
		return nil
	}
	ep := s.epochAt(index)
	sn, err := s.mem.CreateSnapshot(index, ep.cs, encodeSnapshot(ep.members, m.Data))
	if err != nil {
		if errors.Is(err, raft.ErrSnapOutOfDate) {
			return nil
		}
		return fmt.Errorf("create raft snapshot at %d: %w", index, err)
	}
	if err := s.disk.saveSnap(sn); err != nil {
		return fmt.Errorf("save raft snapshot at %d: %w", index, err)
	}
	s.snapIndex = index
	if index > s.cfg.SnapshotCatchupEntries {
		if err := s.mem.Compact(index - s.cfg.SnapshotCatchupEntries); err != nil && !errors.Is(err, raft.ErrCompacted) {
			return fmt.Errorf("compact raft log: %w", err)
		}
	}
	if err := s.disk.release(index); err != nil {
		return fmt.Errorf("release WAL files: %w", err)
	}
	// Keep the epoch in force at the snapshot and every later one.
	i := 0
	for i+1 < len(s.epochs) && s.epochs[i+1].index <= index {
		i++
	}
	s.epochs = s.epochs[i:]
	s.log.Infof("raft snapshot at index %d (%d bytes); log compacted", index, len(m.Data))
	return nil
}

// epochAt returns the membership in force at index.
func (s *server) epochAt(index uint64) epoch {
	var e epoch
	for _, ep := range s.epochs {
		if ep.index <= index {
			e = ep
		}
	}
	if e.cs == nil {
		e.cs = s.confState
		e.members = sortedMembers(s.members)
	}
	return e
}

func (s *server) readIndex(m *wire.ReadIndex) {
	if !s.leading() {
		s.rejectRead(m.Ctx, wire.CodeUnavailable, "not the leader")
		return
	}
	if _, dup := s.reads[m.Ctx]; dup {
		s.rejectRead(m.Ctx, wire.CodeInvalidArgument, "ctx already pending")
		return
	}
	s.reads[m.Ctx] = &pendingRead{deadline: time.Now().Add(2 * s.electionTimeout())}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], m.Ctx)
	s.rn.ReadIndex(b[:])
}

func (s *server) transferLeadership(m *wire.TransferLeadership) {
	st := s.rn.Status()
	if st.RaftState != raft.StateLeader {
		s.reply(m.ReqID, wire.CodeUnavailable, "not the leader", nil)
		return
	}
	if s.transfer != nil {
		s.reply(m.ReqID, wire.CodeFailedPrecondition, "a leadership transfer is already under way", nil)
		return
	}
	to := m.To
	if to == 0 {
		var best uint64
		for id, pr := range st.Progress {
			if id != s.cfg.ID && (to == 0 || pr.Match > best) {
				if _, ok := s.members[id]; ok {
					to, best = id, pr.Match
				}
			}
		}
		if to == 0 {
			s.reply(m.ReqID, wire.CodeFailedPrecondition, "no other member to transfer to", nil)
			return
		}
	}
	if to == s.cfg.ID {
		s.reply(m.ReqID, wire.CodeOK, "", nil)
		return
	}
	if _, ok := s.members[to]; !ok {
		s.reply(m.ReqID, wire.CodeNotFound, fmt.Sprintf("node %d is not a member", to), nil)
		return
	}
	s.transfer = &pendingTransfer{reqID: m.ReqID, to: to, deadline: time.Now().Add(3 * s.electionTimeout())}
	s.rn.TransferLeader(to)
}

func (s *server) changeMembers(reqID uint64, typ raftpb.ConfChangeType, mem wire.Member) {
	if !s.leading() {
		s.reply(reqID, wire.CodeUnavailable, "not the leader", nil)
		return
	}
	if s.admin != nil || s.confAppended > s.applied {
		s.reply(reqID, wire.CodeFailedPrecondition, "another membership change is in progress", nil)
		return
	}
	_, exists := s.members[mem.ID]
	switch {
	case mem.ID == 0:
		s.reply(reqID, wire.CodeInvalidArgument, "member id 0 is invalid", nil)
		return
	case typ == raftpb.ConfChangeAddNode && exists:
		s.reply(reqID, wire.CodeAlreadyExists, fmt.Sprintf("node %d is already a member", mem.ID), nil)
		return
	case typ == raftpb.ConfChangeAddNode && (mem.PeerAddr == "" || mem.ClientAddr == ""):
		s.reply(reqID, wire.CodeInvalidArgument, "a new member needs a peer address and a client address", nil)
		return
	case typ == raftpb.ConfChangeRemoveNode && !exists:
		s.reply(reqID, wire.CodeNotFound, fmt.Sprintf("node %d is not a member", mem.ID), nil)
		return
	case typ == raftpb.ConfChangeRemoveNode && len(s.members) == 1:
		s.reply(reqID, wire.CodeFailedPrecondition, "cannot remove the last member", nil)
		return
	}
	ctx := memberContext{ID: mem.ID, PeerAddr: mem.PeerAddr, ClientAddr: mem.ClientAddr, Origin: s.cfg.ID, Incarnation: s.incarnation, ReqID: reqID}
	cc := &raftpb.ConfChange{Type: typ.Enum(), NodeId: new(mem.ID), Context: encodeMemberContext(ctx)}
	if err := s.rn.ProposeConfChange(cc); err != nil {
		s.reply(reqID, wire.CodeUnavailable, "membership change dropped by raft: "+err.Error(), nil)
		return
	}
	s.admin = &pendingAdmin{reqID: reqID, deadline: time.Now().Add(5 * s.electionTimeout())}
}

func (s *server) status(m *wire.Status) {
	st := s.rn.Status()
	last, _ := s.mem.LastIndex()
	r := &wire.StatusReply{
		ReqID:         m.ReqID,
		NodeID:        s.cfg.ID,
		Term:          st.HardState.GetTerm(),
		LeaderID:      st.Lead,
		State:         wire.RaftState(st.RaftState),
		IsLeader:      s.view.isLeader,
		CommitIndex:   st.HardState.GetCommit(),
		AppliedIndex:  s.applied,
		SnapshotIndex: s.snapIndex,
		LastIndex:     last,
		Members:       sortedMembers(s.members),
	}
	for id, pr := range st.Progress {
		r.Progress = append(r.Progress, wire.Progress{ID: id, Match: pr.Match})
	}
	sort.Slice(r.Progress, func(i, j int) bool { return r.Progress[i].ID < r.Progress[j].ID })
	s.out.push(r)
}
