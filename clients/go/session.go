package baton

import (
	"context"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
)

// Session is the liveness of a client: everything acquired under it is
// released when it ends. It is kept alive by a goroutine holding a
// Sessions/KeepAliveStream open and pinging on it; if the stream breaks (the
// connection dropped, the server restarted its listener) the goroutine
// reconnects, and the session survives as long as that happens within its
// TTL. Otherwise it is lost: Done is closed and Err says why.
//
// The goroutine declares the session lost conservatively: TTL after sending
// the last ping the server answered, which is never later than the server's
// own expiry. A holder that watches Done therefore stops before the server
// can hand its lock to somebody else (up to clock drift between the two
// machines over one TTL).
type Session struct {
	c     *Client
	id    uint64
	ttl   time.Duration
	label string

	stop     context.CancelFunc // stops the keep-alive goroutine
	stopCtx  context.Context
	lostCtx  context.Context // cancelled, with the reason as cause, when the session ends
	loseWith context.CancelCauseFunc
	loopDone chan struct{}

	// sc is the session stream that carries and keeps alive the client's
	// own session on the stream transport; nil for a session kept alive by
	// Sessions/KeepAliveStream.
	sc *streamConn

	mu    sync.Mutex
	proof time.Time // send time of the last keep-alive the server answered ALIVE
}

// newStreamSession makes the Session of a stream's welcome: kept alive by
// the stream (no goroutine of its own), not tracked in c.sessions.
func (c *Client) newStreamSession(sc *streamConn, id uint64, ttl time.Duration, label string, proof time.Time) *Session {
	s := &Session{c: c, id: id, ttl: ttl, label: label, proof: proof, loopDone: make(chan struct{}), sc: sc}
	close(s.loopDone)
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	s.lostCtx, s.loseWith = context.WithCancelCause(context.Background())
	return s
}

func (s *Session) idOrZero() uint64 {
	if s == nil {
		return 0
	}
	return s.id
}

// touch records that the server answered something sent at sent.
func (s *Session) touch(sent time.Time) {
	if s == nil {
		return
	}
	s.mu.Lock()
	if sent.After(s.proof) {
		s.proof = sent
	}
	s.mu.Unlock()
}

// ErrSessionClosed is the Err of a session ended by Close. It matches
// ErrSessionLost.
var ErrSessionClosed = &sentinel{code: codes.Aborted, msg: "session closed", parent: ErrSessionLost}

// ErrSessionOrphaned is the Err of a session after Orphan. It matches
// ErrSessionLost.
var ErrSessionOrphaned = &sentinel{code: codes.Aborted, msg: "session orphaned (keep-alive stopped)", parent: ErrSessionLost}

// NewSession opens a new session, in addition to the client's own one, with
// the TTL and label of the options (WithSessionTTL, WithSessionLabel; others
// are ignored) or else the client's. Use it with WithSession to hold things
// that must be released together, apart from the rest of the client. Close
// it when done.
func (c *Client) NewSession(ctx context.Context, opts ...Option) (*Session, error) {
	cfg := c.cfg
	for _, o := range opts {
		o(&cfg)
	}
	return c.openSession(ctx, cfg)
}

// openRetryWindow is how long opening a session retries UNAVAILABLE.
const openRetryWindow = 3 * time.Second

func (c *Client) openSession(ctx context.Context, cfg config) (*Session, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, localErr("Sessions.Open", "", ErrClientClosed, "client closed")
	}
	var sent time.Time
	var resp *batonv1.OpenSessionResponse
	var err error
	// A connection that is coming back (gRPC reconnects with a backoff of at
	// most 1 s) fails calls with UNAVAILABLE meanwhile: retry for a few
	// seconds. (An Open whose reply was lost leaves a session nobody keeps
	// alive; it expires after its TTL.)
	giveUp := time.Now().Add(openRetryWindow)
	for wait := 20 * time.Millisecond; ; wait = minDur(wait*2, 500*time.Millisecond) {
		sent = time.Now()
		resp, err = c.raw.Sessions.Open(ctx, &batonv1.OpenSessionRequest{Ttl: dur(cfg.sessionTTL), Label: cfg.sessionLabel})
		if status.Code(err) != codes.Unavailable || time.Now().After(giveUp) || !sleepCtx(ctx, wait) {
			break
		}
	}
	if err != nil {
		return nil, wrapErr(ctx, "Sessions.Open", "", err)
	}
	ttl := fromDur(resp.GetTtl())
	if ttl <= 0 {
		ttl = cfg.sessionTTL
	}
	return c.startSession(resp.GetSessionId(), ttl, cfg.sessionLabel, sent), nil
}

// ResumeSession attaches to an existing session by id (opened by another
// process, e.g. `baton session open`) and keeps it alive from now on, as
// NewSession does. Errors: ErrNotFound if the session does not exist.
func (c *Client) ResumeSession(ctx context.Context, id uint64) (*Session, error) {
	sent := time.Now()
	resp, err := c.raw.Sessions.Describe(ctx, &batonv1.DescribeSessionRequest{SessionId: id})
	if err != nil {
		return nil, wrapErr(ctx, "Sessions.Describe", "", err)
	}
	// The session was alive when Describe was sent; it lives at least until
	// then + expires_in (or + ttl when a stream holds it open).
	proof := sent
	if e := resp.GetExpiresIn(); e != nil {
		proof = sent.Add(fromDur(e) - fromDur(resp.GetTtl()))
	}
	return c.startSession(id, fromDur(resp.GetTtl()), resp.GetLabel(), proof), nil
}

func (c *Client) startSession(id uint64, ttl time.Duration, label string, proof time.Time) *Session {
	s := &Session{c: c, id: id, ttl: ttl, label: label, proof: proof, loopDone: make(chan struct{})}
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	s.lostCtx, s.loseWith = context.WithCancelCause(context.Background())
	c.mu.Lock()
	if c.sessions == nil {
		c.sessions = map[*Session]struct{}{}
	}
	c.sessions[s] = struct{}{}
	c.mu.Unlock()
	context.AfterFunc(s.lostCtx, func() {
		c.mu.Lock()
		delete(c.sessions, s)
		c.mu.Unlock()
	})
	go s.keepAlive()
	return s
}

// ID is the session's id, as in every request's session_id.
func (s *Session) ID() uint64 { return s.id }

// TTL is the session's TTL as granted by the server.
func (s *Session) TTL() time.Duration { return s.ttl }

// Label is the session's label.
func (s *Session) Label() string { return s.label }

// Done is closed when the session has ended: lost (expired, unknown to the
// server), closed, or orphaned. Whatever it held is no longer held.
func (s *Session) Done() <-chan struct{} { return s.lostCtx.Done() }

// Err is nil while the session is alive, then why it ended: an error
// matching ErrSessionLost (ErrSessionClosed, ErrSessionOrphaned, or an
// expiry).
func (s *Session) Err() error {
	if s.lostCtx.Err() == nil {
		return nil
	}
	return context.Cause(s.lostCtx)
}

func (s *Session) lost() bool { return s.lostCtx.Err() != nil }

// ExpiresAt is the client's conservative estimate of when the session ends if
// no further keep-alive succeeds. It moves forward with every answered ping.
func (s *Session) ExpiresAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proof.Add(s.ttl)
}

// Close ends the session on the server, releasing everything it holds and
// ending its waits with ABORTED, and stops the keep-alive goroutine. Closing
// a session that is already lost returns its Err.
func (s *Session) Close(ctx context.Context) error {
	if s.sc != nil && !s.lost() {
		s.sc.endSession(s, ErrSessionClosed)
		_, err := s.c.raw.Sessions.Close(ctx, &batonv1.CloseSessionRequest{SessionId: s.id})
		return wrapErr(ctx, "Sessions.Close", "", err)
	}
	if s.lost() {
		s.stop()
		<-s.loopDone
		if errors.Is(s.Err(), ErrSessionClosed) || errors.Is(s.Err(), ErrSessionOrphaned) {
			return nil
		}
		return wrapErr(nil, "Sessions.Close", "", s.Err())
	}
	s.stop()
	<-s.loopDone
	s.loseWith(ErrSessionClosed)
	_, err := s.c.raw.Sessions.Close(ctx, &batonv1.CloseSessionRequest{SessionId: s.id})
	return wrapErr(ctx, "Sessions.Close", "", err)
}

// Orphan stops keeping the session alive without ending it: the server ends
// it TTL later, unless another process resumes it (ResumeSession). Done is
// closed at once, since this handle no longer vouches for the session.
func (s *Session) Orphan() {
	if s.sc != nil {
		s.sc.endSession(s, ErrSessionOrphaned)
		return
	}
	s.stop()
	<-s.loopDone
	s.loseWith(ErrSessionOrphaned)
}

// SessionInfo describes a session (Sessions/Describe).
type SessionInfo struct {
	ID    uint64
	Label string
	TTL   time.Duration
	// ExpiresIn is the time left before expiry; 0 while a keep-alive stream
	// holds the session open.
	ExpiresIn   time.Duration
	Age         time.Duration
	OpenStreams int
}

// Describe asks the server about the session.
func (s *Session) Describe(ctx context.Context) (*SessionInfo, error) {
	return s.c.DescribeSession(ctx, s.id)
}

// DescribeSession asks the server about any session. Errors: ErrNotFound.
func (c *Client) DescribeSession(ctx context.Context, id uint64) (*SessionInfo, error) {
	req := &batonv1.DescribeSessionRequest{SessionId: id}
	resp, err := call(ctx, c, false, "describe_session", req, func(ctx context.Context) (*batonv1.DescribeSessionResponse, error) {
		return c.raw.Sessions.Describe(ctx, req)
	})
	if err != nil {
		return nil, wrapErr(ctx, "Sessions.Describe", "", err)
	}
	return &SessionInfo{
		ID: resp.GetSessionId(), Label: resp.GetLabel(), TTL: fromDur(resp.GetTtl()),
		ExpiresIn: fromDur(resp.GetExpiresIn()), Age: fromDur(resp.GetAge()), OpenStreams: int(resp.GetOpenStreams()),
	}, nil
}

// CloseSession ends any session by id (Sessions/Close). Errors: ErrNotFound.
func (c *Client) CloseSession(ctx context.Context, id uint64) error {
	_, err := c.raw.Sessions.Close(ctx, &batonv1.CloseSessionRequest{SessionId: id})
	return wrapErr(ctx, "Sessions.Close", "", err)
}

// KeepAliveSession extends any session by its TTL from now, once
// (Sessions/KeepAlive), and returns the time left. Errors: ErrNotFound.
func (c *Client) KeepAliveSession(ctx context.Context, id uint64) (time.Duration, error) {
	resp, err := c.raw.Sessions.KeepAlive(ctx, &batonv1.KeepAliveRequest{SessionId: id})
	if err != nil {
		return 0, wrapErr(ctx, "Sessions.KeepAlive", "", err)
	}
	return fromDur(resp.GetExpiresIn()), nil
}

// pingInterval is how often the keep-alive goroutine pings on its stream, and
// pingTimeout how long it waits for an answer before it drops the stream and
// reconnects. Both are fractions of the TTL so that a reconnect has time to
// happen within it.
func (s *Session) pingInterval() time.Duration { return probeInterval(s.ttl) }
func (s *Session) pingTimeout() time.Duration {
	return clampDur(s.ttl/4, 100*time.Millisecond, 5*time.Second)
}

var errNotFoundOnStream = status.Error(codes.NotFound, "the server does not know the session (it expired or was closed)")

func (s *Session) keepAlive() {
	defer close(s.loopDone)
	// The contract's re-open backoff (clients/README.md), as the stream's.
	retry := streamBackoffBase
	for {
		if s.stopCtx.Err() != nil {
			return
		}
		deadline := s.ExpiresAt()
		if !time.Now().Before(deadline) {
			s.loseWith(localErr("Sessions.KeepAliveStream", "", ErrSessionLost, "no keep-alive answered within the session TTL"))
			s.closeOnServer()
			return
		}
		answered, err := s.runStream(deadline)
		if status.Code(err) == codes.NotFound {
			s.loseWith(tag(wrapErr(nil, "Sessions.KeepAliveStream", "", err), ErrSessionLost))
			return
		}
		if answered {
			retry = streamBackoffBase
		}
		select {
		case <-s.stopCtx.Done():
			return
		case <-time.After(minDur(jitter(retry), time.Until(s.ExpiresAt()))):
		}
		retry = minDur(time.Duration(float64(retry)*streamBackoffMul), streamBackoffMax)
	}
}

// closeOnServer is a best-effort Close after the client gave the session up,
// so that the server does not keep its holdings for longer than the client
// believes.
func (s *Session) closeOnServer() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _ = s.c.raw.Sessions.Close(ctx, &batonv1.CloseSessionRequest{SessionId: s.id})
}

type kaRecv struct {
	resp *batonv1.KeepAliveResponse
	err  error
}

// runStream keeps one KeepAliveStream open until it breaks, a ping goes
// unanswered, or the session is stopped. Until the first answer, the attempt
// is bounded by deadline (the end of the grace period). It reports whether any
// ping was answered, and the error that ended the stream.
func (s *Session) runStream(deadline time.Time) (answered bool, err error) {
	ctx, cancel := context.WithCancel(s.stopCtx)
	defer cancel()
	connectTimer := time.AfterFunc(time.Until(deadline), cancel)
	defer connectTimer.Stop()

	stream, err := s.c.raw.Sessions.KeepAliveStream(ctx, grpc.WaitForReady(true))
	if err != nil {
		return false, err
	}
	recv := make(chan kaRecv, 1)
	go func() {
		for {
			r, err := stream.Recv()
			select {
			case recv <- kaRecv{r, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var pending []time.Time // send times of unanswered pings, oldest first
	send := func() error {
		pending = append(pending, time.Now())
		return stream.Send(&batonv1.KeepAliveRequest{SessionId: s.id})
	}
	if err := send(); err != nil {
		return false, err
	}
	ticker := time.NewTicker(s.pingInterval())
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return answered, ctx.Err()
		case r := <-recv:
			if r.err != nil {
				return answered, r.err
			}
			if len(pending) == 0 {
				return answered, status.Error(codes.Internal, "keep-alive answer without a request")
			}
			sent := pending[0]
			pending = pending[1:]
			if r.resp.GetState() == batonv1.SessionState_SESSION_STATE_NOT_FOUND {
				return answered, errNotFoundOnStream
			}
			if !answered {
				answered = true
				connectTimer.Stop()
			}
			s.mu.Lock()
			if sent.After(s.proof) {
				s.proof = sent
			}
			s.mu.Unlock()
		case <-ticker.C:
			if len(pending) > 0 && time.Since(pending[0]) > s.pingTimeout() {
				return answered, status.Error(codes.Unavailable, "keep-alive ping unanswered")
			}
			if err := send(); err != nil {
				return answered, err
			}
		}
	}
}

// bind returns a context that is also cancelled, with cause ErrSessionLost,
// when the session ends: a blocked call owned by a lost session is cancelled
// on the server (which rolls back a racing grant) instead of waiting on.
func (s *Session) bind(ctx context.Context) (context.Context, context.CancelFunc) {
	if s == nil {
		return context.WithCancel(ctx)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(s.lostCtx, func() { cancel(ErrSessionLost) })
	return ctx, func() { stop(); cancel(context.Canceled) }
}
