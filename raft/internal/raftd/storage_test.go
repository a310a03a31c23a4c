package raftd

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

func entries(lo, hi uint64) []*raftpb.Entry {
	var out []*raftpb.Entry
	for i := lo; i <= hi; i++ {
		out = append(out, &raftpb.Entry{Index: new(i), Term: new(uint64(1)), Type: raftpb.EntryNormal.Enum(), Data: bytes.Repeat([]byte{byte(i)}, 100)})
	}
	return out
}

func TestStorageRecoversWhatWasSaved(t *testing.T) {
	dir := t.TempDir()
	s, rec, err := openStorage(zap.NewNop(), dir, 5)
	if err != nil || !rec.fresh {
		t.Fatalf("open: %v fresh=%v", err, rec.fresh)
	}
	if err := s.save(&raftpb.HardState{Term: new(uint64(1)), Vote: new(uint64(5)), Commit: new(uint64(3))}, entries(1, 3)); err != nil {
		t.Fatal(err)
	}
	s.close()
	s, rec, err = openStorage(zap.NewNop(), dir, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if rec.fresh || len(rec.entries) != 3 || rec.hard.GetCommit() != 3 || rec.hard.GetVote() != 5 {
		t.Fatalf("recovered fresh=%v %d entries, hard state %v", rec.fresh, len(rec.entries), rec.hard)
	}
	if _, _, err := openStorage(zap.NewNop(), t.TempDir(), 6); err != nil {
		t.Fatal(err)
	}
}

func TestStorageRefusesAnotherNodesWAL(t *testing.T) {
	dir := t.TempDir()
	s, _, err := openStorage(zap.NewNop(), dir, 5)
	if err != nil {
		t.Fatal(err)
	}
	s.save(&raftpb.HardState{Term: new(uint64(1)), Commit: new(uint64(1))}, entries(1, 1))
	s.close()
	if _, _, err := openStorage(zap.NewNop(), dir, 6); err == nil {
		t.Fatal("node 6 opened node 5's WAL")
	}
}

// A crash in the middle of writing a record leaves it torn at the end of the
// last WAL file; the start cuts it off (it was never synced, so never
// acknowledged) and keeps everything before it.
func TestStorageRepairsATornTail(t *testing.T) {
	dir := t.TempDir()
	s, _, err := openStorage(zap.NewNop(), dir, 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.save(&raftpb.HardState{Term: new(uint64(1)), Commit: new(uint64(2))}, entries(1, 2)); err != nil {
		t.Fatal(err)
	}
	if err := s.save(&raftpb.HardState{Term: new(uint64(1)), Commit: new(uint64(2))}, entries(3, 3)); err != nil {
		t.Fatal(err)
	}
	s.close()
	files, _ := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	if len(files) != 1 {
		t.Fatalf("WAL files: %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	end := len(bytes.TrimRight(b, "\x00"))
	// Cut inside the last records (entry 3 and its HardState).
	if err := os.Truncate(files[0], int64(end-60)); err != nil {
		t.Fatal(err)
	}
	s, rec, err := openStorage(zap.NewNop(), dir, 5)
	if err != nil {
		t.Fatalf("open after a torn write: %v", err)
	}
	defer s.close()
	if len(rec.notes) != 1 {
		t.Fatalf("notes %v, want one repair", rec.notes)
	}
	if len(rec.entries) != 2 || rec.hard.GetCommit() != 2 {
		t.Fatalf("after repair: %d entries, hard state %v; want entries 1-2", len(rec.entries), rec.hard)
	}
}
