package raftd

// What batond is told about leadership, and what a lost leadership fails.
// All on the loop goroutine.

import (
	"github.com/baton/baton/raft/wire"
	"go.etcd.io/raft/v3"
)

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
	v := leaderView{term: term, lead: st.Lead, isLeader: isLeader && s.appliedTerm == term && !s.removed,
		leadAddr: s.clientAddr(st.Lead)}
	if v != s.view {
		s.view = v
		s.out.push(&wire.Leadership{Term: v.term, LeaderID: v.lead, LeaderClientAddr: v.leadAddr, IsLeader: v.isLeader})
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
