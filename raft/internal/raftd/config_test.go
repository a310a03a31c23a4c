package raftd

import (
	"bytes"
	"testing"

	"github.com/baton/baton/raft/wire"
)

func TestParseInitialCluster(t *testing.T) {
	ms, err := ParseInitialCluster("2=h2:7380@h2:7379, 1=127.0.0.1:1@127.0.0.1:2")
	if err != nil {
		t.Fatal(err)
	}
	want := []wire.Member{{ID: 1, PeerAddr: "127.0.0.1:1", ClientAddr: "127.0.0.1:2"}, {ID: 2, PeerAddr: "h2:7380", ClientAddr: "h2:7379"}}
	if len(ms) != 2 || ms[0] != want[0] || ms[1] != want[1] {
		t.Fatalf("got %+v", ms)
	}
	for _, bad := range []string{"1=h:1", "0=h:1@h:2", "x=h:1@h:2", "1=h@h:2", "1=h:1@h:2,1=h:3@h:4"} {
		if _, err := ParseInitialCluster(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestEntryEnvelopeRoundTrips(t *testing.T) {
	o := entryOrigin{node: 3, incarnation: 0xABCDEF, cookie: 77}
	got, data, err := decodeEntry(encodeEntry(o, []byte("batch")))
	if err != nil || got != o || string(data) != "batch" {
		t.Fatalf("got %+v %q %v", got, data, err)
	}
	if _, _, err := decodeEntry([]byte("short")); err == nil {
		t.Fatal("a short entry decoded")
	}
}

func TestSnapshotEnvelopeRoundTrips(t *testing.T) {
	ms := []wire.Member{{ID: 1, PeerAddr: "a:1", ClientAddr: "a:2"}}
	gotMs, data, err := decodeSnapshot(encodeSnapshot(ms, []byte("state")))
	if err != nil || len(gotMs) != 1 || gotMs[0] != ms[0] || !bytes.Equal(data, []byte("state")) {
		t.Fatalf("got %+v %q %v", gotMs, data, err)
	}
	if _, _, err := decodeSnapshot([]byte("not a snapshot")); err == nil {
		t.Fatal("garbage decoded")
	}
}
