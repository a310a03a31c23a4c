package raftd

// Raft snapshots: made from batond's COMPACT, handed to raft for lagging
// members, and renewed on request when a membership change outdates them.

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/baton/baton/raft/wire"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

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
