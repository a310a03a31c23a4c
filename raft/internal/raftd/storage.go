package raftd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// diskStorage is the raft state on disk: etcd's WAL (HardState, entries,
// snapshot markers) in <data-dir>/wal and etcd's snapshot files in
// <data-dir>/snap, used as etcd's own server uses them
// (server/storage/storage.go): a snapshot file is written before its WAL
// marker, so a marker never names a missing file.
//
// Used only by the server's loop goroutine.
type diskStorage struct {
	lg          *zap.Logger
	walDir      string
	snapDir     string
	wal         *wal.WAL
	snapshotter *snap.Snapshotter
	stopPurge   chan struct{}
	failAfter   int // test hook, see faultEnv
	saves       int
}

// walMetadata is recorded at the head of every WAL file.
type walMetadata struct {
	NodeID uint64 `json:"node_id"`
}

// recovered is what openStorage found.
type recovered struct {
	notes    []string // what recovery repaired, for the log
	fresh    bool     // no WAL existed: a new node
	snapshot *raftpb.Snapshot
	hard     *raftpb.HardState
	entries  []*raftpb.Entry
}

// How many files of each kind the background purge keeps. The WAL keeps
// every file that holds entries after the newest snapshot regardless (they
// stay locked until released).
const (
	maxWALFiles   = 5
	maxSnapFiles  = 3
	purgeInterval = 30 * time.Second
)

func openStorage(lg *zap.Logger, dataDir string, id uint64) (*diskStorage, *recovered, error) {
	s := &diskStorage{
		lg:        lg,
		walDir:    filepath.Join(dataDir, "wal"),
		snapDir:   filepath.Join(dataDir, "snap"),
		stopPurge: make(chan struct{}),
	}
	if v := os.Getenv(faultEnv); v != "" {
		s.failAfter, _ = strconv.Atoi(v)
	}
	if err := fileutil.TouchDirAll(lg, dataDir); err != nil {
		return nil, nil, fmt.Errorf("data dir %s: %w", dataDir, err)
	}
	if err := fileutil.TouchDirAll(lg, s.snapDir); err != nil {
		return nil, nil, fmt.Errorf("snapshot dir %s: %w", s.snapDir, err)
	}
	s.snapshotter = snap.New(lg, s.snapDir)
	rec := &recovered{hard: &raftpb.HardState{}}

	if !wal.Exist(s.walDir) {
		meta, _ := json.Marshal(walMetadata{NodeID: id})
		w, err := wal.Create(lg, s.walDir, meta)
		if err != nil {
			return nil, nil, fmt.Errorf("create WAL in %s: %w", s.walDir, err)
		}
		s.wal = w
		rec.fresh = true
		s.startPurge()
		return s, rec, nil
	}

	// The newest snapshot file that the WAL has a marker for (etcd's
	// bootstrap does the same): a file without a marker may be an orphan of
	// a crash between the two writes.
	walSnaps, err := wal.ValidSnapshotEntries(lg, s.walDir)
	if err != nil {
		return nil, nil, fmt.Errorf("read snapshot markers in %s: %w", s.walDir, err)
	}
	sn, err := s.snapshotter.LoadNewestAvailable(walSnaps)
	if err != nil && !errors.Is(err, snap.ErrNoSnapshot) {
		return nil, nil, fmt.Errorf("load snapshot from %s: %w", s.snapDir, err)
	}
	walsnap := &walpb.Snapshot{}
	if sn != nil {
		walsnap.Index = new(sn.GetMetadata().GetIndex())
		walsnap.Term = new(sn.GetMetadata().GetTerm())
		walsnap.ConfState = sn.GetMetadata().GetConfState()
		rec.snapshot = sn
	}
	// A record torn by a crash in the middle of a write (its tail never
	// synced, so never acknowledged) is cut off by etcd's wal.Repair, once,
	// as etcd's own bootstrap does; any other damage stops the start.
	var w *wal.WAL
	var metaBytes []byte
	var hs *raftpb.HardState
	var ents []*raftpb.Entry
	for repaired := false; ; repaired = true {
		w, err = wal.Open(lg, s.walDir, walsnap)
		if err != nil {
			return nil, nil, fmt.Errorf("open WAL in %s: %w", s.walDir, err)
		}
		metaBytes, hs, ents, err = w.ReadAll()
		if err == nil {
			break
		}
		w.Close()
		if repaired || !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil, fmt.Errorf("read WAL in %s (not repairable): %w", s.walDir, err)
		}
		if !wal.Repair(lg, s.walDir) {
			return nil, nil, fmt.Errorf("read WAL in %s: %w; repairing its torn tail failed", s.walDir, err)
		}
		rec.notes = append(rec.notes, fmt.Sprintf("repaired a torn record at the end of the WAL in %s (%v)", s.walDir, err))
	}
	var meta walMetadata
	if err := json.Unmarshal(metaBytes, &meta); err != nil {
		w.Close()
		return nil, nil, fmt.Errorf("WAL metadata in %s: %w", s.walDir, err)
	}
	if meta.NodeID != id {
		w.Close()
		return nil, nil, fmt.Errorf("the WAL in %s belongs to node %d, not --id %d", s.walDir, meta.NodeID, id)
	}
	s.wal = w
	rec.hard = hs
	rec.entries = ents
	s.startPurge()
	return s, rec, nil
}

// startPurge deletes old WAL and snapshot files in the background, as etcd
// does; a WAL file is deleted only once unlocked (released below).
func (s *diskStorage) startPurge() {
	fileutil.PurgeFile(s.lg, s.walDir, "wal", maxWALFiles, purgeInterval, s.stopPurge)
	fileutil.PurgeFile(s.lg, s.snapDir, "snap", maxSnapFiles, purgeInterval, s.stopPurge)
}

// save appends HardState and entries and fsyncs when raft requires it
// (new entries, or a new term or vote). A commit-index-only change is written
// but not synced, as in etcd.
func (s *diskStorage) save(hs *raftpb.HardState, ents []*raftpb.Entry) error {
	if s.failAfter > 0 && len(ents) > 0 {
		if s.saves++; s.saves > s.failAfter {
			return errors.New("injected WAL write failure (" + faultEnv + ")")
		}
	}
	return s.wal.Save(hs, ents)
}

// faultEnv names a test hook: with BATON_RAFTD_FAULT_WAL_AFTER=N in its
// environment, baton-raftd fails the WAL write of its (N+1)-th batch of
// entries, as a failed write or fsync would (the cluster tests check that
// this is fatal: FATAL, exit 1, never retried).
const faultEnv = "BATON_RAFTD_FAULT_WAL_AFTER"

// saveSnap writes the snapshot file, then its WAL marker (fsynced).
func (s *diskStorage) saveSnap(sn *raftpb.Snapshot) error {
	walsnap := &walpb.Snapshot{
		Index:     new(sn.GetMetadata().GetIndex()),
		Term:      new(sn.GetMetadata().GetTerm()),
		ConfState: sn.GetMetadata().GetConfState(),
	}
	if err := s.snapshotter.SaveSnap(sn); err != nil {
		return err
	}
	return s.wal.SaveSnapshot(walsnap)
}

func (s *diskStorage) sync() error { return s.wal.Sync() }

// release unlocks WAL files wholly before index so the purge may delete them.
func (s *diskStorage) release(index uint64) error {
	return s.wal.ReleaseLockTo(index)
}

func (s *diskStorage) close() {
	close(s.stopPurge)
	s.wal.Close()
}

// loadMemory fills raft's in-memory log from what was recovered.
func loadMemory(rec *recovered) (*raft.MemoryStorage, error) {
	ms := raft.NewMemoryStorage()
	if rec.snapshot != nil {
		if err := ms.ApplySnapshot(rec.snapshot); err != nil {
			return nil, err
		}
	}
	if err := ms.SetHardState(rec.hard); err != nil {
		return nil, err
	}
	if err := ms.Append(rec.entries); err != nil {
		return nil, err
	}
	return ms, nil
}
