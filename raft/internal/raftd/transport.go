package raftd

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// transport carries raft messages between baton-raftd processes over TCP.
//
// Each node dials one persistent connection to every other member and only
// writes on it; it reads from the connections its peers dialed to it. A
// connection opens with a 16-byte hello (8 bytes "BRAFTP01", u64 LE sender
// id) and then carries frames: u32 LE length, then a protobuf raftpb.Message.
//
// Sending never blocks the raft loop: each peer has a bounded queue; a
// message that does not fit, or that is queued while the peer is unreachable,
// is dropped and raft is told (ReportUnreachable; ReportSnapshot(failure) for
// a MsgSnap), as etcd's rafthttp and raftexample do. Raft retransmits.
//
// Threading: send, setPeers run on the raft loop; everything else on the
// transport's own goroutines. Received messages and the peer goroutines'
// reports come back through the recvc and reportc channels, read by the raft
// loop; send returns its own reports to the loop directly.
type transport struct {
	id     uint64
	logger raft.Logger
	// How long sent data may stay unacknowledged before an outbound
	// connection is given up and dialled again (TCP_USER_TIMEOUT).
	stall time.Duration

	mu    sync.Mutex
	peers map[uint64]*peer

	recvc   chan *raftpb.Message
	reportc chan report
	downc   chan uint64 // a connection from or to this peer ended
	stopc   chan struct{}
	ln      net.Listener
}

type reportKind int

const (
	reportUnreachable reportKind = iota
	reportSnapshotOK
	reportSnapshotFailed
)

type report struct {
	kind reportKind
	id   uint64
}

const (
	peerMagic       = "BRAFTP01"
	peerQueueLen    = 4096
	maxPeerFrame    = 1 << 30
	dialTimeout     = time.Second
	minBackoff      = 50 * time.Millisecond
	maxBackoff      = time.Second
	writeTimeout    = 5 * time.Second
	snapWriteFactor = 60 // a MsgSnap may take this many write timeouts
)

// newTransport: `stall` is the election timeout. A connection whose data is
// not acknowledged for that long is stuck (a link that dropped packets, then
// came back): TCP would otherwise wait out its retransmission backoff, which
// grows to seconds while a link flaps, and the peer would hear nothing from
// this node (a leader's heartbeats included) until then. A fresh connection
// gets through at once.
func newTransport(id uint64, ln net.Listener, logger raft.Logger, stall time.Duration) *transport {
	return &transport{
		id:      id,
		logger:  logger,
		stall:   stall,
		peers:   map[uint64]*peer{},
		recvc:   make(chan *raftpb.Message, 4096),
		reportc: make(chan report, 1024),
		downc:   make(chan uint64, 64),
		stopc:   make(chan struct{}),
		ln:      ln,
	}
}

// start begins accepting peer connections.
func (t *transport) start() { go t.acceptLoop() }

// setPeers makes the set of peers (other than this node) exactly addrs.
func (t *transport) setPeers(addrs map[uint64]string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, p := range t.peers {
		if a, ok := addrs[id]; !ok || a != p.addr {
			close(p.stopc)
			delete(t.peers, id)
		}
	}
	for id, a := range addrs {
		if id == t.id {
			continue
		}
		if _, ok := t.peers[id]; !ok {
			p := &peer{t: t, id: id, addr: a, q: make(chan *raftpb.Message, peerQueueLen), kickc: make(chan struct{}, 1), stopc: make(chan struct{})}
			t.peers[id] = p
			go p.run()
		}
	}
}

// send queues messages; see the type comment for what happens on overflow.
// The reports for messages dropped here are returned to the caller (the raft
// loop) rather than queued: the loop must never wait on its own channel.
func (t *transport) send(msgs []*raftpb.Message) []report {
	var reports []report
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range msgs {
		p := t.peers[m.GetTo()]
		if p != nil {
			select {
			case p.q <- m:
				continue
			default:
			}
		}
		if m.GetType() == raftpb.MsgSnap {
			reports = append(reports, report{reportSnapshotFailed, m.GetTo()})
		}
		reports = append(reports, report{reportUnreachable, m.GetTo()})
	}
	return reports
}

// dropped tells raft, from a peer goroutine, that a message did not go out.
func (t *transport) dropped(m *raftpb.Message) {
	if m.GetType() == raftpb.MsgSnap {
		t.report(report{reportSnapshotFailed, m.GetTo()})
	}
	t.report(report{reportUnreachable, m.GetTo()})
}

func (t *transport) report(r report) {
	if r.kind == reportUnreachable {
		select {
		case t.reportc <- r:
		default: // raft already has plenty of the same news
		}
		return
	}
	select { // a snapshot's outcome must reach raft, or it stays paused
	case t.reportc <- r:
	case <-t.stopc:
	}
}

func (t *transport) stop() {
	close(t.stopc)
	t.ln.Close()
	t.mu.Lock()
	for id, p := range t.peers {
		close(p.stopc)
		delete(t.peers, id)
	}
	t.mu.Unlock()
}

func (t *transport) acceptLoop() {
	for {
		c, err := t.ln.Accept()
		if err != nil {
			select {
			case <-t.stopc:
				return
			default:
			}
			t.logger.Warningf("peer listener: %v", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go t.serveConn(c)
	}
}

// serveConn reads one inbound connection until it breaks.
func (t *transport) serveConn(c net.Conn) {
	defer c.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-t.stopc:
			c.Close()
		case <-done:
		}
	}()
	r := bufio.NewReaderSize(c, 64<<10)
	var hello [16]byte
	c.SetReadDeadline(time.Now().Add(writeTimeout)) // a silent stranger is dropped
	if _, err := io.ReadFull(r, hello[:]); err != nil {
		return
	}
	c.SetReadDeadline(time.Time{})
	if string(hello[:8]) != peerMagic {
		t.logger.Warningf("peer connection from %s: bad hello", c.RemoteAddr())
		return
	}
	from := binary.LittleEndian.Uint64(hello[8:])
	t.kick(from)
	defer func() {
		select {
		case t.downc <- from:
		default:
		}
	}()
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if !errors.Is(err, io.EOF) {
				t.logger.Debugf("peer connection from %d: %v", from, err)
			}
			return
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n > maxPeerFrame {
			t.logger.Warningf("peer connection from %d: frame of %d bytes", from, n)
			return
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return
		}
		m := &raftpb.Message{}
		if err := proto.Unmarshal(buf, m); err != nil {
			t.logger.Warningf("peer connection from %d: bad message: %v", from, err)
			return
		}
		select {
		case t.recvc <- m:
		case <-t.stopc:
			return
		}
	}
}

// kick makes the outbound side towards id redial now if it is waiting out a
// backoff: id just connected to us, so it is up again (a restarted node
// would otherwise miss our messages, votes included, for up to maxBackoff).
func (t *transport) kick(id uint64) {
	t.mu.Lock()
	p := t.peers[id]
	t.mu.Unlock()
	if p != nil {
		select {
		case p.kickc <- struct{}{}:
		default:
		}
	}
}

// peer is the outbound side towards one member.
type peer struct {
	t     *transport
	id    uint64
	addr  string
	q     chan *raftpb.Message
	kickc chan struct{}
	stopc chan struct{}
}

func (p *peer) run() {
	backoff := minBackoff
	for {
		select {
		case <-p.stopc:
			p.drain()
			return
		default:
		}
		c, err := p.t.dial(p.addr)
		if err != nil {
			p.t.logger.Debugf("dial peer %d at %s: %v", p.id, p.addr, err)
			p.drain()
			select {
			case <-time.After(backoff):
				backoff = min(backoff*2, maxBackoff)
			case <-p.kickc:
				backoff = minBackoff
			case <-p.stopc:
				return
			}
			continue
		}
		backoff = minBackoff
		err = p.write(c)
		c.Close()
		if err != nil {
			p.t.logger.Debugf("peer %d at %s: %v", p.id, p.addr, err)
			p.t.report(report{reportUnreachable, p.id})
			select { // as when its connection to us ends
			case p.t.downc <- p.id:
			default:
			}
		}
	}
}

// dial connects to a peer with the stall bound set on the socket.
func (t *transport) dial(addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT,
				int(t.stall/time.Millisecond))
		}); err != nil {
			return err
		}
		return serr
	}}
	return d.Dial("tcp", addr)
}

// drain drops every queued message, as a peer that cannot be reached gets
// nothing; raft hears of it.
func (p *peer) drain() {
	for {
		select {
		case m := <-p.q:
			p.t.dropped(m)
		default:
			return
		}
	}
}

// write sends queued messages on c until an error or stop. It flushes
// whenever the queue runs empty, so a burst goes out in few writes.
func (p *peer) write(c net.Conn) error {
	w := bufio.NewWriterSize(c, 64<<10)
	var hello [16]byte
	copy(hello[:], peerMagic)
	binary.LittleEndian.PutUint64(hello[8:], p.t.id)
	c.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := w.Write(hello[:]); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	// The connection is write-only, so a peer that went away is noticed
	// only by reading: otherwise the first message after its death would
	// vanish into a dead socket (a vote, say), and only the second would fail.
	broken := make(chan struct{})
	go func() {
		var b [1]byte
		c.Read(b[:])
		close(broken)
	}()
	var lenbuf [4]byte
	for {
		var m *raftpb.Message
		select {
		case m = <-p.q:
		case <-broken:
			return errors.New("connection closed by the peer")
		case <-p.stopc:
			return nil
		}
		b, err := proto.Marshal(m)
		if err != nil {
			return fmt.Errorf("marshal %v: %w", m.GetType(), err)
		}
		timeout := writeTimeout
		isSnap := m.GetType() == raftpb.MsgSnap
		if isSnap {
			timeout *= snapWriteFactor
		}
		c.SetWriteDeadline(time.Now().Add(timeout))
		binary.LittleEndian.PutUint32(lenbuf[:], uint32(len(b)))
		w.Write(lenbuf[:])
		w.Write(b)
		if isSnap || len(p.q) == 0 {
			if err := w.Flush(); err != nil {
				if isSnap {
					p.t.report(report{reportSnapshotFailed, p.id})
				}
				return err
			}
		}
		if isSnap {
			p.t.report(report{reportSnapshotOK, p.id})
		}
	}
}
