package raftd

import (
	"errors"
	"net"
	"syscall"
	"time"

	"go.etcd.io/raft/v3"
)

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
