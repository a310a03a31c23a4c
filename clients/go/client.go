package baton

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
)

// DefaultSessionTTL is the TTL of the client's session unless WithSessionTTL
// says otherwise: how long the server keeps what the client holds after the
// client stops keeping the session alive (it crashed, or lost the network for
// longer than this).
const DefaultSessionTTL = 15 * time.Second

// DefaultDialTimeout bounds Dial's wait for the server (as does its ctx).
const DefaultDialTimeout = 10 * time.Second

// Client is a connection to one Baton server, and the factory of handles on
// its resources (c.Mutex, c.Queue, ...). It is safe for concurrent use.
//
// Holdings (locks, permits, in-flight items, running tasks) are owned by the
// client's session unless a handle says otherwise (WithSession, WithLease,
// WithoutSession). The session is opened on first use and kept alive in the
// background; see Session.
type Client struct {
	cc       grpc.ClientConnInterface
	conn     *grpc.ClientConn // nil when the caller owns the connection
	cfg      config
	raw      Raw
	stream   *streamConn // the session stream; nil on the unary transport
	closedCh chan struct{}

	openMu   sync.Mutex
	mu       sync.Mutex
	sess     *Session              // the client's own session (Session)
	sessions map[*Session]struct{} // every session started through the client, ended by Close
	closed   bool
}

// Raw holds the generated gRPC clients of every Baton service, for calls and
// fields the handles do not cover.
type Raw struct {
	Sessions   batonv1.SessionsClient
	Locks      batonv1.LocksClient
	Semaphores batonv1.SemaphoresClient
	Events     batonv1.EventsClient
	Conditions batonv1.ConditionsClient
	Barriers   batonv1.BarriersClient
	Queues     batonv1.QueuesClient
	Futures    batonv1.FuturesClient
	Tasks      batonv1.TasksClient
	Timers     batonv1.TimersClient
	Admin      batonv1.AdminClient
	// Stream is the session stream (stream.proto). On the stream transport
	// (the default) the client keeps one Connect call open on it.
	Stream batonv1.StreamClient
	Health healthpb.HealthClient
}

type config struct {
	sessionTTL   time.Duration
	sessionLabel string
	dialTimeout  time.Duration
	creds        credentials.TransportCredentials
	tls          *TLSConfig // WithTLS: made into creds by Dial
	dialOpts     []grpc.DialOption
	connectCheck bool
	// WithToken, WithTokenFile (read by Dial), WithInsecureToken.
	tokenSet      bool // either was given
	tokenFromFile bool // WithTokenFile was the last
	token         string
	tokenFile     string
	insecureToken bool
	transport     Transport
	onSessionLost func(*Session, error)
}

// Option configures Dial, New and NewSession.
type Option func(*config)

// WithSessionTTL sets the TTL of the client's session (default
// DefaultSessionTTL; the server accepts 1 s to its --max_session_ttl_s).
func WithSessionTTL(ttl time.Duration) Option { return func(c *config) { c.sessionTTL = ttl } }

// WithSessionLabel sets the label shown by Sessions/Describe (default:
// "go:<hostname>:<pid>").
func WithSessionLabel(label string) Option { return func(c *config) { c.sessionLabel = label } }

// WithDialTimeout bounds Dial's wait for the server, besides its ctx
// (default DefaultDialTimeout; 0: only ctx).
func WithDialTimeout(d time.Duration) Option { return func(c *config) { c.dialTimeout = d } }

// WithTransportCredentials sets TLS credentials (default: plaintext). WithTLS
// builds them from PEM files; the last of the two given applies.
func WithTransportCredentials(creds credentials.TransportCredentials) Option {
	return func(c *config) { c.creds, c.tls = creds, nil }
}

// WithDialOptions adds gRPC dial options.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) { c.dialOpts = append(c.dialOpts, opts...) }
}

// WithoutConnectCheck makes Dial return at once, without waiting until the
// server answers a health check.
func WithoutConnectCheck() Option { return func(c *config) { c.connectCheck = false } }

func newConfig(opts []Option) config {
	host, _ := os.Hostname()
	cfg := config{
		sessionTTL:   DefaultSessionTTL,
		sessionLabel: fmt.Sprintf("go:%s:%d", host, os.Getpid()),
		dialTimeout:  DefaultDialTimeout,
		connectCheck: true,
	}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// Dial connects to the Baton server at addr ("host:port", or a cluster's
// nodes as "h1:7411,h2:7411,h3:7411": the client uses one and moves to
// another when it goes away; any gRPC target works too) and, unless
// WithoutConnectCheck, waits until it answers a health check, bounded by ctx
// and WithDialTimeout (default DefaultDialTimeout). An unreachable server is
// an error matching ErrUnavailable. The connection is plaintext unless WithTLS
// or WithTransportCredentials says otherwise. WithToken or WithTokenFile adds
// a bearer token to every call.
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	cfg := newConfig(opts)
	creds, err := cfg.transportCreds(addr)
	if err != nil {
		return nil, err
	}
	perRPC, err := cfg.perRPCCreds(addr, creds)
	if err != nil {
		return nil, err
	}
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	var tokenOpts []grpc.DialOption
	if perRPC != nil {
		tokenOpts = append(tokenOpts, grpc.WithPerRPCCredentials(perRPC))
	}
	dopts := append(append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		// Reconnect quickly: a session's grace period is its TTL, seconds.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
		// The contract's channel keepalive: a ping every 20 s, 10 s to
		// answer, also without calls.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 20 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
	}, tokenOpts...), cfg.dialOpts...)
	target := addr
	if addrs := splitAddrs(addr); addrs != nil {
		var opt grpc.DialOption
		target, opt = multiTarget(addrs)
		dopts = append(dopts, opt)
	}
	conn, err := grpc.NewClient(target, dopts...)
	if err != nil {
		return nil, wrapErr(ctx, "Dial", addr, status.Error(codes.InvalidArgument, err.Error()))
	}
	c := newClient(conn, cfg)
	c.conn = conn
	if cfg.connectCheck {
		if err := c.checkConnect(ctx, addr); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return c, nil
}

// New makes a client over a connection the caller owns (Close does not close
// it).
func New(cc grpc.ClientConnInterface, opts ...Option) *Client {
	return newClient(cc, newConfig(opts))
}

func newClient(cc grpc.ClientConnInterface, cfg config) *Client {
	c := &Client{
		cc:       cc,
		cfg:      cfg,
		closedCh: make(chan struct{}),
		raw: Raw{
			Sessions:   batonv1.NewSessionsClient(cc),
			Locks:      batonv1.NewLocksClient(cc),
			Semaphores: batonv1.NewSemaphoresClient(cc),
			Events:     batonv1.NewEventsClient(cc),
			Conditions: batonv1.NewConditionsClient(cc),
			Barriers:   batonv1.NewBarriersClient(cc),
			Queues:     batonv1.NewQueuesClient(cc),
			Futures:    batonv1.NewFuturesClient(cc),
			Tasks:      batonv1.NewTasksClient(cc),
			Timers:     batonv1.NewTimersClient(cc),
			Admin:      batonv1.NewAdminClient(cc),
			Stream:     batonv1.NewStreamClient(cc),
			Health:     healthpb.NewHealthClient(cc),
		},
	}
	if cfg.transport == Stream {
		c.stream = newStreamConn(c)
	}
	return c
}

func (c *Client) checkConnect(ctx context.Context, addr string) error {
	if c.cfg.dialTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.dialTimeout)
		defer cancel()
	}
	resp, err := c.raw.Health.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil {
		if ctx.Err() != nil && c.conn != nil {
			// WaitForReady hides the connection error behind the deadline;
			// report what the caller needs: the server is not reachable.
			return wrapErr(nil, "Dial", addr, status.Errorf(codes.Unavailable,
				"cannot reach %s: %s", addr, status.Convert(err).Message()))
		}
		return wrapErr(ctx, "Dial", addr, err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return wrapErr(nil, "Dial", addr, status.Errorf(codes.Unavailable, "server at %s is %s", addr, resp.GetStatus()))
	}
	return nil
}

// Raw returns the generated gRPC clients.
func (c *Client) Raw() *Raw { return &c.raw }

// Conn returns the gRPC connection made by Dial (nil for New).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close ends the sessions opened or resumed through the client that are
// still alive (releasing everything they hold at once rather than after their
// TTL; Orphan a session first to leave it running), and closes the
// connection made by Dial. Handles made from the client fail afterwards.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.closedCh)
	var live []*Session
	for s := range c.sessions {
		live = append(live, s)
	}
	c.mu.Unlock()
	var err error
	if c.stream != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = c.stream.close(ctx)
		cancel()
	}
	for _, s := range live {
		if s.lost() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if e := s.Close(ctx); e != nil && !errors.Is(e, ErrSessionLost) && !errors.Is(e, ErrNotFound) && err == nil {
			err = e
		}
		cancel()
	}
	if c.conn != nil {
		if e := c.conn.Close(); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// Session returns the client's session, opening it on first use. If the
// session was lost (see Session.Done), the next call opens a new one:
// holdings of the lost session are gone, and handles acquire anew under the
// new session. On the stream transport the session is the stream's: opened
// by its hello, and replaced by a new one as soon as it is lost (see
// OnSessionLost).
func (c *Client) Session(ctx context.Context) (*Session, error) {
	if c.stream != nil {
		return c.stream.session(ctx)
	}
	c.openMu.Lock() // one Open at a time for the client's own session
	defer c.openMu.Unlock()
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s != nil && !s.lost() {
		return s, nil
	}
	s, err := c.openSession(ctx, c.cfg)
	if err != nil {
		return nil, err
	}
	if f := c.cfg.onSessionLost; f != nil {
		context.AfterFunc(s.lostCtx, func() {
			if err := s.Err(); !errors.Is(err, ErrSessionClosed) && !errors.Is(err, ErrSessionOrphaned) {
				f(s, err)
			}
		})
	}
	c.mu.Lock()
	c.sess = s
	c.mu.Unlock()
	return s, nil
}

// newRequestID returns a random idempotency key for Acquire.
func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "go-" + hex.EncodeToString(b[:])
}
