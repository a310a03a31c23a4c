package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"
)

var members = []Member{{ID: 1, PeerAddr: "127.0.0.1:7380", ClientAddr: "127.0.0.1:7379"}, {ID: 2, PeerAddr: "h2:1", ClientAddr: "h2:2"}}

var every = []Message{
	&Hello{AppliedIndex: 42},
	&Propose{Cookie: 7, Data: []byte("cmd")},
	&Compact{Index: 9, Data: []byte("snap")},
	&ReadIndex{Ctx: 3},
	&TransferLeadership{ReqID: 1, To: 2},
	&AddMember{ReqID: 2, Member: members[1]},
	&RemoveMember{ReqID: 3, ID: 2},
	&ListMembers{ReqID: 4},
	&Status{ReqID: 5},
	&Ready{LastCommitted: 10, NodeID: 1, Members: members},
	&Committed{Index: 11, Term: 2, Cookie: 7, Data: []byte("cmd")},
	&Rejected{Cookie: 7, Code: CodeUnavailable, MaybeCommitted: true, LeaderID: 2, LeaderClientAddr: "h2:2", Message: "lost"},
	&Leadership{Term: 3, LeaderID: 2, LeaderClientAddr: "h2:2", IsLeader: true},
	&InstallSnapshot{Index: 12, Term: 3, Data: []byte("state")},
	&ReadState{Ctx: 3, Index: 12},
	&ReadRejected{Ctx: 3, Code: CodeUnavailable, LeaderID: 2, LeaderClientAddr: "h2:2", Message: "not the leader"},
	&Reply{ReqID: 4, Code: CodeOK, LeaderID: 1, LeaderClientAddr: "a", Members: members},
	&StatusReply{ReqID: 5, Code: CodeOK, Message: "m", NodeID: 1, Term: 3, LeaderID: 1, State: StateLeader, IsLeader: true, CommitIndex: 12, AppliedIndex: 12, SnapshotIndex: 9, LastIndex: 13, Members: members, Progress: []Progress{{1, 13}, {2, 12}}},
	&Membership{Index: 13, Members: members},
	&Fatal{Message: "fsync failed"},
	&SnapshotRequest{MinIndex: 13},
}

func TestEveryMessageRoundTrips(t *testing.T) {
	var buf bytes.Buffer
	for _, m := range every {
		if err := WriteFrame(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range every {
		got, err := ReadFrame(&buf)
		if err != nil {
			t.Fatalf("%T: %v", want, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip of %T:\n got %+v\nwant %+v", want, got, want)
		}
	}
	if _, err := ReadFrame(&buf); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

// The byte layout is the contract with the C++ side: pin one message.
func TestCommittedLayoutIsLittleEndianAsDocumented(t *testing.T) {
	got := AppendFrame(nil, &Committed{Index: 0x0102, Term: 3, Cookie: 4, Data: []byte("ab")})
	want := []byte{
		31, 0, 0, 0, // length: 1 + 8 + 8 + 8 + 4 + 2
		0x82,
		0x02, 0x01, 0, 0, 0, 0, 0, 0,
		3, 0, 0, 0, 0, 0, 0, 0,
		4, 0, 0, 0, 0, 0, 0, 0,
		2, 0, 0, 0, 'a', 'b',
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("frame\n got % x\nwant % x", got, want)
	}
}

func TestTrailingFieldsAreIgnored(t *testing.T) {
	f := AppendFrame(nil, &Hello{AppliedIndex: 5})
	f = append(f, 0xEE, 0xEE)
	binary.LittleEndian.PutUint32(f, uint32(len(f)-4))
	m, err := ReadFrame(bytes.NewReader(f))
	if err != nil || m.(*Hello).AppliedIndex != 5 {
		t.Fatalf("got %+v, %v", m, err)
	}
}

func TestMalformedFramesAreProtocolErrors(t *testing.T) {
	cases := map[string][]byte{
		"unknown type":   {1, 0, 0, 0, 0x7F},
		"short payload":  {5, 0, 0, 0, byte(THello), 1, 2, 3, 4},
		"zero length":    {0, 0, 0, 0},
		"huge length":    {0xFF, 0xFF, 0xFF, 0xFF},
		"bad bool":       append([]byte{1 + 8 + 8 + 4 + 1, 0, 0, 0, byte(TLeadership)}, append(make([]byte, 20), 7)...),
		"string too big": {1 + 8 + 4, 0, 0, 0, byte(TPropose), 1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0},
		"member count":   {1 + 8 + 8 + 4, 0, 0, 0, byte(TReady), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0},
	}
	for name, b := range cases {
		if _, err := ReadFrame(bytes.NewReader(b)); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: %v, want ErrProtocol", name, err)
		}
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{9, 0, 0, 0, byte(THello), 1})); err != io.ErrUnexpectedEOF {
		t.Errorf("truncated frame: %v, want io.ErrUnexpectedEOF", err)
	}
}
