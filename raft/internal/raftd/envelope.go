package raftd

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/baton/baton/raft/wire"
)

// What baton-raftd stores inside raft's opaque fields. None of it is seen by
// batond except through the local protocol.

// Entry envelope: every normal entry baton-raftd proposes is
//
//	u8 version (1) | u64 proposer node id | u64 proposer incarnation | u64 cookie | batond's bytes
//
// little-endian. An empty entry (len 0) is raft's own no-op at the start of a
// term. The incarnation is random per process start, so a cookie of an
// earlier run of the same node is never mistaken for a live one.
const entryVersion = 1
const entryHeader = 1 + 8 + 8 + 8

type entryOrigin struct {
	node, incarnation, cookie uint64
}

func encodeEntry(o entryOrigin, data []byte) []byte {
	e := wire.Encoder{}
	e.U8(entryVersion)
	e.U64(o.node)
	e.U64(o.incarnation)
	e.U64(o.cookie)
	return append(e.Result(), data...)
}

func decodeEntry(b []byte) (entryOrigin, []byte, error) {
	if len(b) < entryHeader || b[0] != entryVersion {
		return entryOrigin{}, nil, fmt.Errorf("entry of %d bytes has no baton-raftd header", len(b))
	}
	d := wire.NewDecoder(b[1:])
	o := entryOrigin{node: d.U64(), incarnation: d.U64(), cookie: d.U64()}
	return o, d.Rest(), nil
}

// memberContext is the Context of every ConfChange baton-raftd proposes (and
// of the bootstrap ones): the member's addresses, and who asked, so that the
// proposer can answer its request when the change applies.
type memberContext struct {
	ID          uint64 `json:"id"`
	PeerAddr    string `json:"peer_addr,omitempty"`
	ClientAddr  string `json:"client_addr,omitempty"`
	Origin      uint64 `json:"origin,omitempty"`
	Incarnation uint64 `json:"incarnation,omitempty"`
	ReqID       uint64 `json:"req_id,omitempty"`
}

func encodeMemberContext(c memberContext) []byte {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	return b
}

func decodeMemberContext(b []byte) (memberContext, error) {
	var c memberContext
	if len(b) == 0 {
		return c, nil
	}
	err := json.Unmarshal(b, &c)
	return c, err
}

// Snapshot envelope: the Data of every raft snapshot baton-raftd writes is
//
//	8 bytes "BRSNAP01" | members (as in the wire protocol) | bytes: batond's snapshot
//
// so that the member addresses survive log compaction with the snapshot.
const snapMagic = "BRSNAP01"

func encodeSnapshot(members []wire.Member, data []byte) []byte {
	e := wire.Encoder{}
	e.U64(0) // placeholder overwritten by the magic below
	b := e.Result()
	copy(b, snapMagic)
	e2 := wire.Encoder{}
	e2.Members(members)
	e2.Bytes(data)
	return append(b, e2.Result()...)
}

func decodeSnapshot(b []byte) ([]wire.Member, []byte, error) {
	if len(b) < 8 || string(b[:8]) != snapMagic {
		return nil, nil, errors.New("raft snapshot was not written by baton-raftd (bad magic)")
	}
	d := wire.NewDecoder(b[8:])
	ms := d.Members()
	data := d.Bytes()
	if d.Err() != nil {
		return nil, nil, fmt.Errorf("raft snapshot envelope: %v", d.Err())
	}
	return ms, data, nil
}

// sortedMembers returns the members of m ordered by id.
func sortedMembers(m map[uint64]wire.Member) []wire.Member {
	out := make([]wire.Member, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
