package raftd

import (
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	"github.com/baton/baton/raft/wire"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// The handlers of batond's requests. All run on the loop goroutine.

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
