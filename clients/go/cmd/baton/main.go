// Command baton is the command-line client of Baton: flock and etcdctl for
// every Baton primitive. `baton help` lists the commands, `baton help CMD`
// (or `baton CMD --help`) documents one; README.md in clients/go has the
// whole reference with the exit codes.
//
// The commands are cobra commands made by newRoot; each runs against an env
// (the parsed global flags, the streams, the client once dialed). Errors are
// returned as values and turned into the documented exit codes by
// env.exitCode, in one place.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	baton "github.com/baton/baton/clients/go"
)

// version is the CLI's version, set at build time:
//
//	go build -ldflags "-X main.version=0.9.0" ./cmd/baton
var version = "dev"

// Exit codes: baton's own outcomes. Documented in the root help, in
// 'baton help exit-codes' and in README.md; scripts rely on them.
const (
	exitOK          = 0
	exitFailure     = 1 // any other failure
	exitUsage       = 2 // bad flags or arguments; the server said INVALID_ARGUMENT
	exitTimeout     = 3 // not granted in time, would block (--try), event not set (is-set)
	exitNotFound    = 4 // no such session, resource or task
	exitConflict    = 5 // not held, kind mismatch, already done, aborted (session ended, barrier broken)
	exitUnavailable = 6 // the server cannot be reached or is shutting down
	exitRemoteError = 7 // the awaited future or task failed or was cancelled
	exitInterrupted = 130
)

// On a command line that runs a command (`lock NAME -- CMD`, `sem acquire
// NAME -- CMD`), baton exits with CMD's status when CMD ran. Its own outcomes
// 1..7 are then reported as ownCodeOffset+code (65..71), and a CMD that exits
// 65..71 itself is reported as childReservedCode (64), so that 65..71 always
// mean baton and never CMD. 126 and 127 are a CMD that could not be executed
// (as in shells).
const (
	ownCodeOffset        = 64
	childReservedCode    = 64
	exitCmdNotExecutable = 126
	exitCmdNotFound      = 127
)

// callTimeout bounds a call that does not wait, unless --timeout says
// otherwise.
const callTimeout = 30 * time.Second

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// globals are the flags every command accepts.
type globals struct {
	addr        string
	timeout     time.Duration
	json        bool
	session     uint64
	sessionTTL  time.Duration
	dialTimeout time.Duration
	// TLS: useTLS is --tls; the files imply it.
	useTLS bool
	tls    baton.TLSConfig
	// Bearer token: --auth-token, --auth-token-file (flags, "" unless
	// given: a token is never a default shown by --help), else
	// $BATON_TOKEN, $BATON_TOKEN_FILE; --insecure-token. token and
	// tokenFile are the one in effect, set by dialWith.
	flagToken, flagTokenFile string
	envToken, envTokenFile   string
	insecureToken            bool
	token, tokenFile         string
}

// tlsOn reports whether to dial over TLS: --tls, or any of --ca, --cert,
// --key, --server-name (or their environment variables).
func (g *globals) tlsOn() bool {
	return g.useTLS || g.tls != (baton.TLSConfig{})
}

func defaultGlobals() globals {
	g := globals{addr: os.Getenv("BATON_ADDR"), sessionTTL: baton.DefaultSessionTTL, dialTimeout: 2 * time.Second,
		tls: baton.TLSConfig{CAFile: os.Getenv("BATON_CA"), CertFile: os.Getenv("BATON_CERT"),
			KeyFile: os.Getenv("BATON_KEY"), ServerName: os.Getenv("BATON_SERVER_NAME")}}
	g.useTLS, _ = strconv.ParseBool(os.Getenv("BATON_TLS"))
	g.envToken, g.envTokenFile = os.Getenv("BATON_TOKEN"), os.Getenv("BATON_TOKEN_FILE")
	g.insecureToken, _ = strconv.ParseBool(os.Getenv("BATON_INSECURE_TOKEN"))
	if g.addr == "" {
		g.addr = "127.0.0.1:7411"
	}
	return g
}

// serverEnv is what a command run by baton (lock, sem acquire, task work)
// needs in its environment to reach the same server: BATON_ADDR, and the
// TLS and token settings in effect.
func (g *globals) serverEnv() []string {
	env := []string{envVar("BATON_ADDR", g.addr)}
	if g.tlsOn() {
		env = append(env, "BATON_TLS=1")
	}
	for _, kv := range [][2]string{{"BATON_CA", g.tls.CAFile}, {"BATON_CERT", g.tls.CertFile},
		{"BATON_KEY", g.tls.KeyFile}, {"BATON_SERVER_NAME", g.tls.ServerName}} {
		if kv[1] != "" {
			env = append(env, envVar(kv[0], kv[1]))
		}
	}
	if g.token != "" || g.tokenFile != "" {
		// Both, one empty: the one in effect replaces the other inherited.
		env = append(env, envVar("BATON_TOKEN", g.token), envVar("BATON_TOKEN_FILE", g.tokenFile))
		if g.insecureToken {
			env = append(env, "BATON_INSECURE_TOKEN=1")
		}
	}
	return env
}

// env is one invocation: parsed globals, streams, the client once dialed.
type env struct {
	g      globals
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	ctx    context.Context // cancelled by SIGINT/SIGTERM (a child gets them forwarded too)
	client *baton.Client
	rec    *recorder // the replies of the calls made, for --json
	// resumed are the sessions attached with --session: orphaned, not
	// closed, before baton exits.
	resumed []*baton.Session
	// runsChild says the command line runs a command after "--" whose
	// status baton passes through: baton's own codes are then moved to
	// 65..71 (see ownCodeOffset).
	runsChild bool
	// conflictCode replaces exitTimeout when >= 0 (--conflict-exit-code).
	conflictCode int
	// flags are the global flags (which of them were given).
	flags *pflag.FlagSet
}

// exitError carries an exit code and a message for stderr ("" prints
// nothing).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func usageErr(format string, args ...any) error {
	return &exitError{exitUsage, fmt.Sprintf(format, args...)}
}

// childExit is the status of a command baton ran, passed through as is.
type childExit struct{ code int }

func (c *childExit) Error() string { return fmt.Sprintf("command exited %d", c.code) }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{g: defaultGlobals(), stdin: stdin, stdout: stdout, stderr: stderr, rec: newRecorder(), conflictCode: -1}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e.ctx = ctx
	root := newRoot(e)
	root.SetArgs(append([]string{}, args...)) // never nil: cobra would read os.Args
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	for _, s := range e.resumed {
		s.Orphan()
	}
	if e.client != nil {
		_ = e.client.Close()
	}
	if cmd != nil && cmd.Annotations[annotRunsChild] != "" && slices.Contains(args, "--") {
		e.runsChild = true
	}
	if err == nil {
		return exitOK
	}
	code := e.exitCode(err)
	var ee *exitError
	var ce *childExit
	if !(errors.As(err, &ee) && ee.msg == "") && !errors.As(err, &ce) {
		what := "baton"
		if cmd != nil {
			what = cmd.CommandPath()
		}
		msg := message(err)
		if code == exitUsage || code == ownCodeOffset+exitUsage {
			if cmd != nil && cmd.HasParent() {
				msg += fmt.Sprintf(" (see '%s --help')", cmd.CommandPath())
			} else {
				msg += " (see 'baton help')"
			}
		}
		fmt.Fprintf(stderr, "%s: %s\n", what, msg)
	}
	return code
}

// exitCode maps an error to the documented exit code of this invocation.
func (e *env) exitCode(err error) int {
	var ce *childExit
	if errors.As(err, &ce) {
		return ce.code
	}
	code := exitCode(err)
	if code == exitInterrupted && e.ctx.Err() == nil {
		code = exitFailure
	}
	if code == exitTimeout && e.conflictCode >= 0 {
		return e.conflictCode
	}
	if e.runsChild && code >= exitFailure && code <= exitRemoteError {
		code += ownCodeOffset
	}
	return code
}

// exitCode maps an error to baton's own exit codes.
func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var re *baton.RemoteError
	if errors.As(err, &re) || errors.Is(err, baton.ErrFutureCancelled) || errors.Is(err, baton.ErrTaskCancelled) {
		return exitRemoteError
	}
	if errors.Is(err, baton.ErrWouldBlock) {
		return exitTimeout
	}
	switch status.Code(err) {
	case codes.OK:
		return exitFailure
	case codes.DeadlineExceeded:
		return exitTimeout
	case codes.NotFound:
		return exitNotFound
	case codes.FailedPrecondition, codes.Aborted, codes.AlreadyExists:
		return exitConflict
	case codes.Unavailable:
		return exitUnavailable
	case codes.InvalidArgument:
		return exitUsage
	case codes.Canceled:
		return exitInterrupted
	}
	return exitFailure
}

// rpcError is a failed call made through the generated stubs (the library's
// handles return a *baton.Error instead): which RPC, and its status.
type rpcError struct {
	op, name string
	st       *status.Status
}

func (e *rpcError) Error() string              { return e.op + ": " + e.st.Message() }
func (e *rpcError) GRPCStatus() *status.Status { return e.st }

// wrapRPC turns the error of a stub call into an *rpcError (nil stays nil).
func wrapRPC(ctx context.Context, op, name string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err)
	}
	if st.Code() == codes.DeadlineExceeded && ctx.Err() != nil {
		st = status.New(codes.DeadlineExceeded, "")
	}
	return &rpcError{op: op, name: name, st: st}
}

// message is the text for stderr: the server's message, with what failed.
func message(err error) string {
	var be *baton.Error
	var re *rpcError
	var what string
	var st *status.Status
	switch {
	case errors.As(err, &be):
		what, st = be.Op, be.GRPCStatus()
		if be.Name != "" {
			what += " " + be.Name
		}
	case errors.As(err, &re):
		what, st = re.op, re.st
		if re.name != "" {
			what += " " + re.name
		}
	default:
		return err.Error()
	}
	m := st.Message()
	switch st.Code() {
	case codes.DeadlineExceeded:
		// gRPC's own texts for a deadline: the client's ("context deadline
		// exceeded") or the server's when the deadline reached it first.
		generic := m == "" || strings.Contains(strings.ToLower(m), "deadline exceeded")
		if errors.Is(err, baton.ErrWouldBlock) || generic {
			m = "timed out"
			if errors.Is(err, baton.ErrWouldBlock) {
				m = "would have to wait"
			}
		}
	case codes.Canceled:
		m = "interrupted"
	}
	return fmt.Sprintf("%s: %s (%s)", what, m, codeName(st.Code()))
}

func codeName(c codes.Code) string {
	switch c {
	case codes.DeadlineExceeded:
		return "timeout"
	case codes.FailedPrecondition:
		return "failed precondition"
	case codes.InvalidArgument:
		return "invalid argument"
	case codes.NotFound:
		return "not found"
	case codes.ResourceExhausted:
		return "resource exhausted"
	case codes.PermissionDenied:
		return "permission denied"
	}
	return strings.ToLower(c.String())
}

// dial connects to the server (once).
func (e *env) dial() (*baton.Client, error) {
	if e.client != nil {
		return e.client, nil
	}
	return e.dialWith()
}

// dialWith connects with extra options; the client is kept for the rest of
// the invocation.
func (e *env) dialWith(opts ...baton.Option) (*baton.Client, error) {
	ctx, cancel := context.WithTimeout(e.ctx, e.g.dialTimeout)
	defer cancel()
	// One process, mostly one call: the unary transport, whose replies the
	// recorder sees (--json prints the reply message of the call) and which
	// opens a session only for commands that hold something.
	base := []baton.Option{baton.WithTransport(baton.Unary), baton.WithDialTimeout(e.g.dialTimeout),
		baton.WithSessionTTL(e.g.sessionTTL), baton.WithSessionLabel(label()),
		baton.WithDialOptions(grpc.WithChainUnaryInterceptor(e.rec.unary), grpc.WithChainStreamInterceptor(e.rec.stream))}
	if e.g.tlsOn() {
		if (e.g.tls.CertFile == "") != (e.g.tls.KeyFile == "") {
			return nil, usageErr("--cert and --key go together ($BATON_CERT, $BATON_KEY): give both or neither")
		}
		base = append(base, baton.WithTLS(e.g.tls))
	}
	tokenOpts, err := e.tokenOpts()
	if err != nil {
		return nil, err
	}
	opts = append(append(base, tokenOpts...), opts...)
	c, err := baton.Dial(ctx, e.g.addr, opts...)
	if err != nil {
		if e.ctx.Err() != nil {
			return nil, &exitError{exitInterrupted, "interrupted"}
		}
		if errors.Is(err, baton.ErrPlaintextToken) {
			return nil, usageErr("refusing to send the token in plaintext to %s, which is not a loopback address: "+
				"connect over TLS (--tls, --ca), or give --insecure-token ($BATON_INSECURE_TOKEN=1) for a batond "+
				"--allow_plaintext on a protected network", e.g.addr)
		}
		return nil, err
	}
	e.client = c
	return c, nil
}

// tokenOpts are the token options of the flags, else of the environment
// variables: --auth-token or --auth-token-file, not both; a flag replaces
// both variables. The one in effect is kept for serverEnv.
func (e *env) tokenOpts() ([]baton.Option, error) {
	changed := func(name string) bool { return e.flags != nil && e.flags.Changed(name) }
	tok, file := changed("auth-token"), changed("auth-token-file")
	switch {
	case tok && file:
		return nil, usageErr("give --auth-token or --auth-token-file, not both")
	case tok:
		e.g.token, e.g.tokenFile = e.g.flagToken, ""
		if e.g.token == "" {
			return nil, usageErr("--auth-token: empty token")
		}
	case file:
		e.g.token, e.g.tokenFile = "", e.g.flagTokenFile
		if e.g.tokenFile == "" {
			return nil, usageErr("--auth-token-file: no file name given")
		}
	case e.g.envToken != "" && e.g.envTokenFile != "":
		return nil, usageErr("$BATON_TOKEN and $BATON_TOKEN_FILE are both set: unset one (or give --auth-token or --auth-token-file)")
	default:
		e.g.token, e.g.tokenFile = e.g.envToken, e.g.envTokenFile
	}
	var opts []baton.Option
	switch {
	case e.g.token != "":
		opts = append(opts, baton.WithToken(e.g.token))
	case e.g.tokenFile != "":
		opts = append(opts, baton.WithTokenFile(e.g.tokenFile))
	default:
		return nil, nil
	}
	if e.g.insecureToken {
		opts = append(opts, baton.WithInsecureToken())
	}
	return opts, nil
}

func label() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("baton-cli:%s:%d", host, os.Getpid())
}

// waitCtx bounds a call that may wait: by --timeout if given.
func (e *env) waitCtx() (context.Context, context.CancelFunc) {
	if e.g.timeout > 0 {
		return context.WithTimeout(e.ctx, e.g.timeout)
	}
	return context.WithCancel(e.ctx)
}

// callCtx bounds a call that does not wait: by --timeout, or 30 s.
func (e *env) callCtx() (context.Context, context.CancelFunc) {
	d := callTimeout
	if e.g.timeout > 0 {
		d = e.g.timeout
	}
	return context.WithTimeout(e.ctx, d)
}

// ownerOpts is who owns what a command acquires: --session ID (resumed and
// kept alive while baton runs, never closed by baton), else --ttl (a lease
// without session, surviving baton), else a session baton opens and closes.
// needDurable says the holding must survive baton's exit.
func (e *env) ownerOpts(ttl time.Duration, needDurable bool) ([]baton.HandleOption, error) {
	if e.g.session == 0 && ttl <= 0 && needDurable {
		return nil, usageErr("without a command, give --ttl (a lease) or --session ID, or the holding would end with baton")
	}
	c, err := e.dial()
	if err != nil {
		return nil, err
	}
	var opts []baton.HandleOption
	if e.g.session != 0 {
		ctx, cancel := e.callCtx()
		defer cancel()
		s, err := c.ResumeSession(ctx, e.g.session)
		if err != nil {
			return nil, err
		}
		// Orphaned, not closed, when baton exits: the session is not ours to end.
		e.resumed = append(e.resumed, s)
		opts = append(opts, baton.WithSession(s))
		if ttl > 0 {
			opts = append(opts, baton.WithLease(ttl))
		}
		return opts, nil
	}
	if ttl > 0 {
		if needDurable {
			return []baton.HandleOption{baton.WithLease(ttl), baton.WithoutSession()}, nil
		}
		return []baton.HandleOption{baton.WithLease(ttl)}, nil
	}
	return nil, nil
}

// clientVersion is the CLI's version with the module's, when the binary
// knows it (go install of a tagged module), and the Go toolchain's.
func clientVersion() (v, module, goVersion string) {
	v = version
	if info, ok := debug.ReadBuildInfo(); ok {
		module, goVersion = info.Main.Version, info.GoVersion
	}
	return v, module, goVersion
}
