package baton_test

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	baton "github.com/baton/baton/clients/go"
)

func TestSessionOutlivesItsTTLWhileKeptAlive(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t, baton.WithSessionTTL(time.Second), baton.WithSessionLabel("ttl-test"))
	n := name(t, "lock")
	held := must[*baton.HeldLock](t)(c.Mutex(n).Lock(ctx))
	s := held.Session()
	if s.TTL() != time.Second || s.Label() != "ttl-test" {
		t.Fatalf("session ttl %v label %q", s.TTL(), s.Label())
	}
	time.Sleep(2500 * time.Millisecond)
	select {
	case <-s.Done():
		t.Fatalf("session lost: %v", s.Err())
	default:
	}
	info := must[*baton.SessionInfo](t)(s.Describe(ctx))
	if info.ID != s.ID() || info.OpenStreams != 1 || info.Label != "ttl-test" {
		t.Fatalf("describe: %+v", info)
	}
	if _, err := dial(t).Mutex(n).TryLock(ctx); !errors.Is(err, baton.ErrWouldBlock) {
		t.Fatalf("lock of a kept-alive session was released: %v", err)
	}
	if err := held.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestClientReusesOneSessionAndReopensAfterLoss(t *testing.T) {
	ctx := ctxT(t)
	c := dial(t)
	s1 := must[*baton.Session](t)(c.Session(ctx))
	if s2 := must[*baton.Session](t)(c.Session(ctx)); s2 != s1 {
		t.Fatal("Session returned a second session")
	}
	// Another process ends the session: the client learns it from its stream.
	must[struct{}](t)(struct{}{}, dial(t).CloseSession(ctx, s1.ID()))
	select {
	case <-s1.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after the session was closed on the server")
	}
	if !errors.Is(s1.Err(), baton.ErrSessionLost) {
		t.Fatalf("Err = %v", s1.Err())
	}
	s3 := must[*baton.Session](t)(c.Session(ctx))
	if s3 == s1 || s3.ID() == s1.ID() {
		t.Fatal("no new session after loss")
	}
}

func TestResumeAndOrphanSession(t *testing.T) {
	ctx := ctxT(t)
	a, b := dial(t), dial(t)
	s := must[*baton.Session](t)(a.NewSession(ctx, baton.WithSessionTTL(2*time.Second), baton.WithSessionLabel("handover")))
	n := name(t, "lock")
	held := must[*baton.HeldLock](t)(a.Mutex(n, baton.WithSession(s)).Lock(ctx))
	s.Orphan()
	if !errors.Is(s.Err(), baton.ErrSessionOrphaned) {
		t.Fatalf("Err after Orphan = %v", s.Err())
	}
	r := must[*baton.Session](t)(b.ResumeSession(ctx, s.ID()))
	if r.Label() != "handover" || r.TTL() != 2*time.Second {
		t.Fatalf("resumed %q %v", r.Label(), r.TTL())
	}
	time.Sleep(3 * time.Second) // longer than the TTL: only b's keep-alive holds it
	info := must[*baton.ResourceInfo](t)(b.Describe(ctx, n))
	if len(info.GetHolders()) != 1 || info.GetHolders()[0].GetToken() != held.Fence() {
		t.Fatalf("holders after handover: %v", info.GetHolders())
	}
	must[struct{}](t)(struct{}{}, r.Close(ctx))
	if _, err := b.Describe(ctx, n); !errors.Is(err, baton.ErrNotFound) {
		t.Fatalf("lock after Close: %v", err)
	}
	if _, err := b.ResumeSession(ctx, r.ID()); !errors.Is(err, baton.ErrNotFound) {
		t.Fatalf("ResumeSession of a closed session: %v", err)
	}
}

// proxy forwards TCP connections to target; Cut drops them all and Block
// refuses new ones until Unblock.
type proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	conns   []net.Conn
	blocked bool
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.Cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.blocked {
				p.mu.Unlock()
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) Block(b bool) {
	p.mu.Lock()
	p.blocked = b
	p.mu.Unlock()
	if b {
		p.Cut()
	}
}

// A dropped connection is not a lost session: the client reconnects within
// the TTL and keeps what it holds.
func TestSessionSurvivesAReconnectWithinTTL(t *testing.T) {
	ctx := ctxT(t)
	p := newProxy(t, addr)
	c := dialAddr(t, p.Addr(), append(suite.Options(), baton.WithSessionTTL(3*time.Second))...)
	n := name(t, "lock")
	held := must[*baton.HeldLock](t)(c.Mutex(n).Lock(ctx))
	s := held.Session()
	p.Block(true)
	time.Sleep(time.Second)
	p.Block(false)
	time.Sleep(4 * time.Second) // past the TTL counted from the cut
	select {
	case <-s.Done():
		t.Fatalf("session lost across a 1 s outage with a 3 s TTL: %v", s.Err())
	default:
	}
	info := must[*baton.SessionInfo](t)(dial(t).DescribeSession(ctx, s.ID()))
	if info.OpenStreams != 1 {
		t.Fatalf("open streams after reconnect: %d", info.OpenStreams)
	}
	if err := held.Unlock(ctx); err != nil {
		t.Fatalf("Unlock after reconnect: %v", err)
	}
}

// An outage longer than the TTL loses the session: Done closes, blocked calls
// end with ErrSessionLost, and the server released the lock to others.
func TestSessionIsLostAfterAnOutageLongerThanTTL(t *testing.T) {
	ctx := ctxT(t)
	p := newProxy(t, addr)
	c := dialAddr(t, p.Addr(), append(suite.Options(), baton.WithSessionTTL(time.Second))...)
	other := dial(t)
	n := name(t, "lock")
	held := must[*baton.HeldLock](t)(c.Mutex(n).Lock(ctx))
	s := held.Session()
	p.Block(true)
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed within 5 s of an outage with a 1 s TTL")
	}
	if !errors.Is(s.Err(), baton.ErrSessionLost) {
		t.Fatalf("Err = %v", s.Err())
	}
	// The client gave up no later than the server: the lock is free now or
	// very soon.
	eventually(t, 2*time.Second, "the lock of the lost session to be released", func() bool {
		h, err := other.Mutex(n).TryLock(ctx)
		if err != nil {
			return false
		}
		_ = h.Unlock(ctx)
		return true
	})
	p.Block(false)
	if _, err := c.Mutex(n, baton.WithSession(s)).Lock(ctx); !errors.Is(err, baton.ErrSessionLost) {
		t.Fatalf("Lock on the lost session: %v", err)
	}
	// The client's next use opens a new session.
	h2 := must[*baton.HeldLock](t)(c.Mutex(n).Lock(ctx))
	if h2.Session() == s {
		t.Fatal("reused the lost session")
	}
	_ = h2.Unlock(ctx)
}

func TestDialUnreachableIsUnavailable(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	a := ln.Addr().String()
	ln.Close()
	ctx := ctxT(t)
	start := time.Now()
	_, err := baton.Dial(ctx, a, baton.WithDialTimeout(500*time.Millisecond))
	if !errors.Is(err, baton.ErrUnavailable) {
		t.Fatalf("Dial of a closed port: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("Dial took too long")
	}
}
