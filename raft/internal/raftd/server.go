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
	// The leader's client address, as this node's membership knows it: a
	// node that joins hears of the leader before it has applied the
	// configuration that names it, and must say the address once it can.
	leadAddr string
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
	for _, n := range rec.notes {
		s.log.Warningf("%s", n)
	}
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
	s.tr = newTransport(s.cfg.ID, ln, s.log, s.electionTimeout())
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
