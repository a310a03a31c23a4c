// Package wire encodes and decodes the messages batond and baton-raftd
// exchange over their local stream socket. PROTOCOL.md is the specification;
// this file follows it field by field.
//
// A frame is a u32 little-endian length L, then L bytes: a u8 message type
// followed by the message's payload. Payload fields are fixed-width
// little-endian integers and byte strings (u32 little-endian length, then the
// bytes), in the order the structs below list them. A receiver ignores bytes
// after the fields it knows, so a field may be appended to a message later
// without breaking an older reader.
//
// Threading: the functions are pure; an Encoder or Decoder is used by one
// goroutine at a time.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxFrame is the largest frame (type byte + payload) either side accepts:
// 1 GiB, enough for a snapshot. A longer length prefix is a protocol error.
const MaxFrame = 1 << 30

// Type is the first byte of every frame. Requests from batond have the high
// bit clear; messages from baton-raftd have it set.
type Type uint8

const (
	// batond -> baton-raftd
	THello              Type = 0x01
	TPropose            Type = 0x02
	TCompact            Type = 0x03
	TReadIndex          Type = 0x04
	TTransferLeadership Type = 0x05
	TAddMember          Type = 0x06
	TRemoveMember       Type = 0x07
	TListMembers        Type = 0x08
	TStatus             Type = 0x09

	// baton-raftd -> batond
	TReady           Type = 0x81
	TCommitted       Type = 0x82
	TRejected        Type = 0x83
	TLeadership      Type = 0x84
	TInstallSnapshot Type = 0x85
	TReadState       Type = 0x86
	TReadRejected    Type = 0x87
	TReply           Type = 0x88
	TStatusReply     Type = 0x89
	TMembership      Type = 0x8A
	TFatal           Type = 0x8B
	TSnapshotRequest Type = 0x8C
)

// Code is a status code; the numbers are gRPC's (and absl::StatusCode's).
type Code uint8

const (
	CodeOK                 Code = 0
	CodeInvalidArgument    Code = 3
	CodeDeadlineExceeded   Code = 4
	CodeNotFound           Code = 5
	CodeAlreadyExists      Code = 6
	CodeResourceExhausted  Code = 8
	CodeFailedPrecondition Code = 9
	CodeInternal           Code = 13
	CodeUnavailable        Code = 14
)

func (c Code) String() string {
	switch c {
	case CodeOK:
		return "OK"
	case CodeInvalidArgument:
		return "INVALID_ARGUMENT"
	case CodeDeadlineExceeded:
		return "DEADLINE_EXCEEDED"
	case CodeNotFound:
		return "NOT_FOUND"
	case CodeAlreadyExists:
		return "ALREADY_EXISTS"
	case CodeResourceExhausted:
		return "RESOURCE_EXHAUSTED"
	case CodeFailedPrecondition:
		return "FAILED_PRECONDITION"
	case CodeInternal:
		return "INTERNAL"
	case CodeUnavailable:
		return "UNAVAILABLE"
	}
	return fmt.Sprintf("CODE_%d", uint8(c))
}

// RaftState is the node's role as the raft library names it.
type RaftState uint8

const (
	StateFollower     RaftState = 0
	StateCandidate    RaftState = 1
	StateLeader       RaftState = 2
	StatePreCandidate RaftState = 3
)

// Member is one voting member of the cluster.
type Member struct {
	ID         uint64 // non-zero
	PeerAddr   string // host:port of its baton-raftd peer listener
	ClientAddr string // host:port of the gRPC API its batond serves
}

// Progress is the leader's view of how far one member's log matches its own.
type Progress struct {
	ID    uint64
	Match uint64 // highest index known to be replicated on that member
}

// Message is any frame's content.
type Message interface {
	Type() Type
	encode(e *Encoder)
	decode(d *Decoder)
}

// ---- batond -> baton-raftd ----

// Hello is the first message on a connection: the index batond's state covers.
type Hello struct{ AppliedIndex uint64 }

// Propose asks the leader to append Data. Cookie is non-zero and unique among
// this connection's pending proposals; the outcome carries it back.
type Propose struct {
	Cookie uint64
	Data   []byte
}

// Compact hands baton-raftd a snapshot of batond's state covering entries <= Index.
type Compact struct {
	Index uint64
	Data  []byte
}

// ReadIndex asks for a linearizable read point; Ctx is echoed in the answer.
type ReadIndex struct{ Ctx uint64 }

// TransferLeadership asks the leader to hand leadership to To (0: the most
// up-to-date other member).
type TransferLeadership struct {
	ReqID uint64
	To    uint64
}

// AddMember adds a voting member through a raft configuration change.
type AddMember struct {
	ReqID  uint64
	Member Member
}

// RemoveMember removes a voting member through a raft configuration change.
type RemoveMember struct {
	ReqID uint64
	ID    uint64
}

// ListMembers asks for this node's view of the membership.
type ListMembers struct{ ReqID uint64 }

// Status asks for this node's raft status.
type Status struct{ ReqID uint64 }

// ---- baton-raftd -> batond ----

// Ready ends the replay that follows Hello.
type Ready struct {
	LastCommitted uint64
	NodeID        uint64
	Members       []Member
}

// Committed is one committed normal entry, in index order.
type Committed struct {
	Index  uint64
	Term   uint64
	Cookie uint64 // the Propose's cookie if this connection proposed it, else 0
	Data   []byte
}

// Rejected is a proposal's failure. MaybeCommitted says whether the entry may
// still commit (then it is delivered later as Committed with cookie 0).
type Rejected struct {
	Cookie           uint64
	Code             Code
	MaybeCommitted   bool
	LeaderID         uint64
	LeaderClientAddr string
	Message          string
}

// Leadership reports a change of term, leader or of this node's readiness to lead.
type Leadership struct {
	Term             uint64
	LeaderID         uint64
	LeaderClientAddr string
	IsLeader         bool
}

// InstallSnapshot replaces batond's state with Data, which covers entries <= Index.
type InstallSnapshot struct {
	Index uint64
	Term  uint64
	Data  []byte
}

// ReadState answers a ReadIndex: reads at Ctx are linearizable once batond
// has applied every entry <= Index (all were sent before this message).
type ReadState struct {
	Ctx   uint64
	Index uint64
}

// ReadRejected is a ReadIndex's failure.
type ReadRejected struct {
	Ctx              uint64
	Code             Code
	LeaderID         uint64
	LeaderClientAddr string
	Message          string
}

// Reply answers TransferLeadership, AddMember, RemoveMember and ListMembers.
type Reply struct {
	ReqID            uint64
	Code             Code
	LeaderID         uint64
	LeaderClientAddr string
	Message          string
	Members          []Member
}

// StatusReply answers Status.
type StatusReply struct {
	ReqID         uint64
	Code          Code // always OK today
	Message       string
	NodeID        uint64
	Term          uint64
	LeaderID      uint64
	State         RaftState
	IsLeader      bool // as last reported in Leadership
	CommitIndex   uint64
	AppliedIndex  uint64 // highest index handed to batond (or skipped as covered)
	SnapshotIndex uint64
	LastIndex     uint64
	Members       []Member
	Progress      []Progress // leader only
}

// Membership reports the membership after a configuration change at Index.
type Membership struct {
	Index   uint64
	Members []Member
}

// Fatal is the last message before baton-raftd exits on an unrecoverable error.
type Fatal struct{ Message string }

// SnapshotRequest asks batond for a COMPACT covering at least MinIndex: the
// leader must send a snapshot to a member and the raft snapshot it has is
// older than a membership change that member needs to see.
type SnapshotRequest struct{ MinIndex uint64 }

func (Hello) Type() Type              { return THello }
func (Propose) Type() Type            { return TPropose }
func (Compact) Type() Type            { return TCompact }
func (ReadIndex) Type() Type          { return TReadIndex }
func (TransferLeadership) Type() Type { return TTransferLeadership }
func (AddMember) Type() Type          { return TAddMember }
func (RemoveMember) Type() Type       { return TRemoveMember }
func (ListMembers) Type() Type        { return TListMembers }
func (Status) Type() Type             { return TStatus }
func (Ready) Type() Type              { return TReady }
func (Committed) Type() Type          { return TCommitted }
func (Rejected) Type() Type           { return TRejected }
func (Leadership) Type() Type         { return TLeadership }
func (InstallSnapshot) Type() Type    { return TInstallSnapshot }
func (ReadState) Type() Type          { return TReadState }
func (ReadRejected) Type() Type       { return TReadRejected }
func (Reply) Type() Type              { return TReply }
func (StatusReply) Type() Type        { return TStatusReply }
func (Membership) Type() Type         { return TMembership }
func (Fatal) Type() Type              { return TFatal }
func (SnapshotRequest) Type() Type    { return TSnapshotRequest }

func (m *Hello) encode(e *Encoder) { e.U64(m.AppliedIndex) }
func (m *Hello) decode(d *Decoder) { m.AppliedIndex = d.U64() }
func (m *Propose) encode(e *Encoder) {
	e.U64(m.Cookie)
	e.Bytes(m.Data)
}
func (m *Propose) decode(d *Decoder) { m.Cookie = d.U64(); m.Data = d.Bytes() }
func (m *Compact) encode(e *Encoder) {
	e.U64(m.Index)
	e.Bytes(m.Data)
}
func (m *Compact) decode(d *Decoder)   { m.Index = d.U64(); m.Data = d.Bytes() }
func (m *ReadIndex) encode(e *Encoder) { e.U64(m.Ctx) }
func (m *ReadIndex) decode(d *Decoder) { m.Ctx = d.U64() }
func (m *TransferLeadership) encode(e *Encoder) {
	e.U64(m.ReqID)
	e.U64(m.To)
}
func (m *TransferLeadership) decode(d *Decoder) { m.ReqID = d.U64(); m.To = d.U64() }
func (m *AddMember) encode(e *Encoder) {
	e.U64(m.ReqID)
	e.member(m.Member)
}
func (m *AddMember) decode(d *Decoder) { m.ReqID = d.U64(); m.Member = d.member() }
func (m *RemoveMember) encode(e *Encoder) {
	e.U64(m.ReqID)
	e.U64(m.ID)
}
func (m *RemoveMember) decode(d *Decoder) { m.ReqID = d.U64(); m.ID = d.U64() }
func (m *ListMembers) encode(e *Encoder)  { e.U64(m.ReqID) }
func (m *ListMembers) decode(d *Decoder)  { m.ReqID = d.U64() }
func (m *Status) encode(e *Encoder)       { e.U64(m.ReqID) }
func (m *Status) decode(d *Decoder)       { m.ReqID = d.U64() }

func (m *Ready) encode(e *Encoder) {
	e.U64(m.LastCommitted)
	e.U64(m.NodeID)
	e.Members(m.Members)
}
func (m *Ready) decode(d *Decoder) {
	m.LastCommitted = d.U64()
	m.NodeID = d.U64()
	m.Members = d.Members()
}
func (m *Committed) encode(e *Encoder) {
	e.U64(m.Index)
	e.U64(m.Term)
	e.U64(m.Cookie)
	e.Bytes(m.Data)
}
func (m *Committed) decode(d *Decoder) {
	m.Index = d.U64()
	m.Term = d.U64()
	m.Cookie = d.U64()
	m.Data = d.Bytes()
}
func (m *Rejected) encode(e *Encoder) {
	e.U64(m.Cookie)
	e.U8(uint8(m.Code))
	e.Bool(m.MaybeCommitted)
	e.U64(m.LeaderID)
	e.String(m.LeaderClientAddr)
	e.String(m.Message)
}
func (m *Rejected) decode(d *Decoder) {
	m.Cookie = d.U64()
	m.Code = Code(d.U8())
	m.MaybeCommitted = d.Bool()
	m.LeaderID = d.U64()
	m.LeaderClientAddr = d.String()
	m.Message = d.String()
}
func (m *Leadership) encode(e *Encoder) {
	e.U64(m.Term)
	e.U64(m.LeaderID)
	e.String(m.LeaderClientAddr)
	e.Bool(m.IsLeader)
}
func (m *Leadership) decode(d *Decoder) {
	m.Term = d.U64()
	m.LeaderID = d.U64()
	m.LeaderClientAddr = d.String()
	m.IsLeader = d.Bool()
}
func (m *InstallSnapshot) encode(e *Encoder) {
	e.U64(m.Index)
	e.U64(m.Term)
	e.Bytes(m.Data)
}
func (m *InstallSnapshot) decode(d *Decoder) {
	m.Index = d.U64()
	m.Term = d.U64()
	m.Data = d.Bytes()
}
func (m *ReadState) encode(e *Encoder) {
	e.U64(m.Ctx)
	e.U64(m.Index)
}
func (m *ReadState) decode(d *Decoder) { m.Ctx = d.U64(); m.Index = d.U64() }
func (m *ReadRejected) encode(e *Encoder) {
	e.U64(m.Ctx)
	e.U8(uint8(m.Code))
	e.U64(m.LeaderID)
	e.String(m.LeaderClientAddr)
	e.String(m.Message)
}
func (m *ReadRejected) decode(d *Decoder) {
	m.Ctx = d.U64()
	m.Code = Code(d.U8())
	m.LeaderID = d.U64()
	m.LeaderClientAddr = d.String()
	m.Message = d.String()
}
func (m *Reply) encode(e *Encoder) {
	e.U64(m.ReqID)
	e.U8(uint8(m.Code))
	e.U64(m.LeaderID)
	e.String(m.LeaderClientAddr)
	e.String(m.Message)
	e.Members(m.Members)
}
func (m *Reply) decode(d *Decoder) {
	m.ReqID = d.U64()
	m.Code = Code(d.U8())
	m.LeaderID = d.U64()
	m.LeaderClientAddr = d.String()
	m.Message = d.String()
	m.Members = d.Members()
}
func (m *StatusReply) encode(e *Encoder) {
	e.U64(m.ReqID)
	e.U8(uint8(m.Code))
	e.String(m.Message)
	e.U64(m.NodeID)
	e.U64(m.Term)
	e.U64(m.LeaderID)
	e.U8(uint8(m.State))
	e.Bool(m.IsLeader)
	e.U64(m.CommitIndex)
	e.U64(m.AppliedIndex)
	e.U64(m.SnapshotIndex)
	e.U64(m.LastIndex)
	e.Members(m.Members)
	e.U32(uint32(len(m.Progress)))
	for _, p := range m.Progress {
		e.U64(p.ID)
		e.U64(p.Match)
	}
}
func (m *StatusReply) decode(d *Decoder) {
	m.ReqID = d.U64()
	m.Code = Code(d.U8())
	m.Message = d.String()
	m.NodeID = d.U64()
	m.Term = d.U64()
	m.LeaderID = d.U64()
	m.State = RaftState(d.U8())
	m.IsLeader = d.Bool()
	m.CommitIndex = d.U64()
	m.AppliedIndex = d.U64()
	m.SnapshotIndex = d.U64()
	m.LastIndex = d.U64()
	m.Members = d.Members()
	n := d.count(16)
	m.Progress = nil
	for i := 0; i < n; i++ {
		m.Progress = append(m.Progress, Progress{ID: d.U64(), Match: d.U64()})
	}
}
func (m *Membership) encode(e *Encoder) {
	e.U64(m.Index)
	e.Members(m.Members)
}
func (m *Membership) decode(d *Decoder)      { m.Index = d.U64(); m.Members = d.Members() }
func (m *Fatal) encode(e *Encoder)           { e.String(m.Message) }
func (m *Fatal) decode(d *Decoder)           { m.Message = d.String() }
func (m *SnapshotRequest) encode(e *Encoder) { e.U64(m.MinIndex) }
func (m *SnapshotRequest) decode(d *Decoder) { m.MinIndex = d.U64() }

// newMessage returns an empty message of type t, or nil for an unknown type.
func newMessage(t Type) Message {
	switch t {
	case THello:
		return &Hello{}
	case TPropose:
		return &Propose{}
	case TCompact:
		return &Compact{}
	case TReadIndex:
		return &ReadIndex{}
	case TTransferLeadership:
		return &TransferLeadership{}
	case TAddMember:
		return &AddMember{}
	case TRemoveMember:
		return &RemoveMember{}
	case TListMembers:
		return &ListMembers{}
	case TStatus:
		return &Status{}
	case TReady:
		return &Ready{}
	case TCommitted:
		return &Committed{}
	case TRejected:
		return &Rejected{}
	case TLeadership:
		return &Leadership{}
	case TInstallSnapshot:
		return &InstallSnapshot{}
	case TReadState:
		return &ReadState{}
	case TReadRejected:
		return &ReadRejected{}
	case TReply:
		return &Reply{}
	case TStatusReply:
		return &StatusReply{}
	case TMembership:
		return &Membership{}
	case TFatal:
		return &Fatal{}
	case TSnapshotRequest:
		return &SnapshotRequest{}
	}
	return nil
}

// AppendFrame appends m's frame (length, type, payload) to dst.
func AppendFrame(dst []byte, m Message) []byte {
	start := len(dst)
	e := Encoder{buf: append(dst, 0, 0, 0, 0, byte(m.Type()))}
	m.encode(&e)
	binary.LittleEndian.PutUint32(e.buf[start:], uint32(len(e.buf)-start-4))
	return e.buf
}

// WriteFrame writes m as one frame.
func WriteFrame(w io.Writer, m Message) error {
	_, err := w.Write(AppendFrame(nil, m))
	return err
}

// ErrProtocol wraps every decoding error.
var ErrProtocol = errors.New("protocol error")

// ReadFrame reads one frame and decodes it. io.EOF means the peer closed the
// stream between frames; any other error is a broken stream or ErrProtocol.
func ReadFrame(r io.Reader) (Message, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n == 0 || n > MaxFrame {
		return nil, fmt.Errorf("%w: frame length %d", ErrProtocol, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return Decode(body)
}

// Decode decodes one frame body (type byte and payload).
func Decode(body []byte) (Message, error) {
	m := newMessage(Type(body[0]))
	if m == nil {
		return nil, fmt.Errorf("%w: unknown message type 0x%02x", ErrProtocol, body[0])
	}
	d := Decoder{buf: body[1:]}
	m.decode(&d)
	if d.err != nil {
		return nil, fmt.Errorf("%w: message type 0x%02x: %v", ErrProtocol, body[0], d.err)
	}
	return m, nil
}

// Encoder appends little-endian fields to a buffer.
type Encoder struct{ buf []byte }

// Result returns what was encoded so far.
func (e *Encoder) Result() []byte { return e.buf }

func (e *Encoder) U8(v uint8) { e.buf = append(e.buf, v) }
func (e *Encoder) Bool(v bool) {
	if v {
		e.U8(1)
	} else {
		e.U8(0)
	}
}
func (e *Encoder) U32(v uint32)    { e.buf = binary.LittleEndian.AppendUint32(e.buf, v) }
func (e *Encoder) U64(v uint64)    { e.buf = binary.LittleEndian.AppendUint64(e.buf, v) }
func (e *Encoder) Bytes(b []byte)  { e.U32(uint32(len(b))); e.buf = append(e.buf, b...) }
func (e *Encoder) String(s string) { e.U32(uint32(len(s))); e.buf = append(e.buf, s...) }
func (e *Encoder) member(m Member) {
	e.U64(m.ID)
	e.String(m.PeerAddr)
	e.String(m.ClientAddr)
}

// Members encodes a u32 count and that many members.
func (e *Encoder) Members(ms []Member) {
	e.U32(uint32(len(ms)))
	for _, m := range ms {
		e.member(m)
	}
}

// Decoder reads little-endian fields; the first error sticks and later reads
// return zero values.
type Decoder struct {
	buf []byte
	err error
}

// NewDecoder decodes b.
func NewDecoder(b []byte) *Decoder { return &Decoder{buf: b} }

// Err is the first error met, if any.
func (d *Decoder) Err() error { return d.err }

// Rest returns the bytes not read yet.
func (d *Decoder) Rest() []byte { return d.buf }

func (d *Decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.buf) < n {
		d.err = fmt.Errorf("payload too short: need %d more bytes, have %d", n, len(d.buf))
		return nil
	}
	b := d.buf[:n:n]
	d.buf = d.buf[n:]
	return b
}

func (d *Decoder) U8() uint8 {
	b := d.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (d *Decoder) Bool() bool {
	v := d.U8()
	if v > 1 && d.err == nil {
		d.err = fmt.Errorf("bool field holds %d", v)
	}
	return v == 1
}

func (d *Decoder) U32() uint32 {
	b := d.take(4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

func (d *Decoder) U64() uint64 {
	b := d.take(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// Bytes returns a byte string; it aliases the frame's buffer.
func (d *Decoder) Bytes() []byte {
	n := d.U32()
	if d.err != nil {
		return nil
	}
	return d.take(int(n))
}

func (d *Decoder) String() string { return string(d.Bytes()) }

// count reads a u32 element count and checks that the rest of the payload
// can hold that many elements of at least minSize bytes each.
func (d *Decoder) count(minSize int) int {
	n := d.U32()
	if d.err != nil {
		return 0
	}
	if uint64(n)*uint64(minSize) > uint64(len(d.buf)) {
		d.err = fmt.Errorf("count %d exceeds the payload", n)
		return 0
	}
	return int(n)
}

func (d *Decoder) member() Member {
	return Member{ID: d.U64(), PeerAddr: d.String(), ClientAddr: d.String()}
}

// Members decodes a u32 count and that many members.
func (d *Decoder) Members() []Member {
	n := d.count(16)
	var ms []Member
	for i := 0; i < n && d.err == nil; i++ {
		ms = append(ms, d.member())
	}
	return ms
}
