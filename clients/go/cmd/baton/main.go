// Command baton is the command-line client of Baton: flock and etcdctl for
// every Baton primitive. `baton help` lists the commands; README.md in
// clients/go documents them with the exit codes.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	baton "github.com/baton/baton/clients/go"
)

// Exit codes. Documented in usage and README.md; scripts rely on them.
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

const usageText = `baton: command-line client of the Baton coordination server.

Usage: baton [global flags] COMMAND [args] [flags]

Locks and semaphores (like flock):
  lock NAME [--ttl D] [--try] -- CMD [ARGS...]   run CMD while holding the lock
  lock NAME (--ttl D | --session ID) [--try]     take the lock and print its token
  unlock NAME --token T [--session ID]           release a lock taken by 'lock NAME'
  refresh NAME --token T --ttl D [--session ID]  extend a lock's or semaphore holding's lease
  sem acquire NAME --capacity N [--count K] [--ttl D] [--try] -- CMD [ARGS...]
  sem acquire NAME --capacity N [--count K] (--ttl D | --session ID)
  sem release NAME --token T [--count K] [--session ID]
  sem delete NAME                                end a semaphore's declaration (its capacity)

Queues:
  queue put NAME [ITEM...]       items from the arguments, else one per stdin line
        [--priority P] [--delay D] [--order fifo|lifo|priority] [--maxsize N] [--max-deliveries N] [--try]
  queue get NAME [--max N] [--visibility D] [--ack] [--try] [--dead-letters]
  queue consume NAME [--count N] [--prefetch N] [--visibility D]   print and ack items as they come
  queue ack NAME RECEIPT...      queue nack NAME RECEIPT... [--delay D]
  queue join NAME                queue purge NAME [--dead-letters]      queue delete NAME

Events, futures, barriers:
  event set|clear|wait|is-set|watch NAME          (is-set exits 0 if set, 3 if clear)
  future set NAME VALUE [--retention D]           ('-' reads the value from stdin)
  future set-error NAME --code C --message M      future await NAME      future cancel NAME
  barrier wait NAME --parties N                   barrier abort NAME     barrier reset NAME

Tasks:
  task submit QUEUE [PAYLOAD] [--group G] [--max-attempts N] [--delay D] [--shielded] [--run-timeout D]
  task await ID      task cancel ID
  task wait ID... [--mode first-completed|first-exception|all-completed] [--wait D]
  task wait --queue Q --group G [--mode ...] [--wait D]
  task take QUEUE [--visibility D] [--try]
  task heartbeat ID --attempt N
  task complete ID --attempt N [RESULT]
  task fail ID --attempt N [--code C] [--message M] [--final]
  task work QUEUE [--count N] [--visibility D] -- CMD [ARGS...]
        run CMD for each task: payload on stdin, its stdout is the result, a non-zero exit fails it

Timers:
  timer after NAME DURATION ACTION     timer at NAME RFC3339-TIME ACTION
  timer every NAME PERIOD ACTION [--first-after D]            timer cancel NAME
  ACTION: --set-event E | --clear-event E | --put QUEUE --item TEXT [--priority P]
          | --set-future F --value V | --submit-task QUEUE --payload P [--max-attempts N]
          and --replace to replace a timer of the same name

Sessions and inspection:
  session open [--ttl D] [--label L]   print the id of a new session (it lives D without keep-alive)
  session keepalive ID [--follow]      session describe ID      session close ID
  ls [PREFIX] [--kind lock|semaphore|event|queue|future|barrier|timer|tasks]
  describe NAME

Global flags (anywhere on the line, before --):
  --addr HOST:PORT      server (default $BATON_ADDR or 127.0.0.1:7411)
  --timeout D           give up waiting after D (exit 3); default: wait as long as it takes;
                        calls that do not wait are bounded by 30s
  --json                print JSON (one object per line) instead of text
  --session ID          own what is acquired by this existing session (see 'session open')
  --session-ttl D       TTL of the session baton opens for a 'lock/sem ... -- CMD' (default 10s)
  --dial-timeout D      how long to try to reach the server (default 2s)

Exit codes: 0 ok; 1 other error; 2 bad usage or invalid argument; 3 timed out, would block,
or event not set; 4 not found; 5 conflict (not held, wrong kind, already done, aborted);
6 server unavailable; 7 the awaited future or task failed or was cancelled;
130 interrupted. 'lock ... -- CMD' and 'sem acquire ... -- CMD' exit with CMD's code
(128+N if CMD was killed by signal N), or 5 if the lock was lost while CMD ran.
`

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
}

func defaultGlobals() globals {
	g := globals{addr: os.Getenv("BATON_ADDR"), sessionTTL: 10 * time.Second, dialTimeout: 2 * time.Second}
	if g.addr == "" {
		g.addr = "127.0.0.1:7411"
	}
	return g
}

// register adds the global flags to fs, with their current values as
// defaults, so that a command's flag set keeps what was given before the
// command name.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.addr, "addr", g.addr, "server address")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "give up waiting after this long")
	fs.BoolVar(&g.json, "json", g.json, "print JSON")
	fs.Uint64Var(&g.session, "session", g.session, "existing session that owns what is acquired")
	fs.DurationVar(&g.sessionTTL, "session-ttl", g.sessionTTL, "TTL of the session opened by baton")
	fs.DurationVar(&g.dialTimeout, "dial-timeout", g.dialTimeout, "how long to try to reach the server")
}

// env is one invocation: parsed globals, streams, the client once dialed.
type env struct {
	g      globals
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	ctx    context.Context // cancelled by SIGINT/SIGTERM (except while a child runs)
	client *baton.Client
	// resumed are the sessions attached with --session: orphaned, not
	// closed, before baton exits.
	resumed []*baton.Session
}

// exitError carries an exit code and a message for stderr.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func usageErr(format string, args ...any) error {
	return &exitError{exitUsage, fmt.Sprintf(format, args...)}
}

var commands = map[string]func(e *env, args []string) error{
	"lock":     cmdLock,
	"unlock":   cmdUnlock,
	"refresh":  cmdRefresh,
	"sem":      cmdSem,
	"queue":    cmdQueue,
	"event":    cmdEvent,
	"future":   cmdFuture,
	"barrier":  cmdBarrier,
	"task":     cmdTask,
	"timer":    cmdTimer,
	"session":  cmdSession,
	"ls":       cmdList,
	"describe": cmdDescribe,
}

// subcommands are the commands whose first argument is a subcommand.
var subcommands = map[string]bool{"sem": true, "queue": true, "event": true, "future": true,
	"barrier": true, "task": true, "timer": true, "session": true}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{g: defaultGlobals(), stdin: stdin, stdout: stdout, stderr: stderr}
	// Global flags may come before the command too.
	pre := flag.NewFlagSet("baton", flag.ContinueOnError)
	pre.SetOutput(io.Discard)
	e.g.register(pre)
	if err := pre.Parse(args); err != nil {
		fmt.Fprintf(stderr, "baton: %v\n\n%s", err, usageText)
		return exitUsage
	}
	args = pre.Args()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usageText)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	fn, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "baton: unknown command %q (see 'baton help')\n", args[0])
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e.ctx = ctx
	err := fn(e, args[1:])
	for _, s := range e.resumed {
		s.Orphan()
	}
	if e.client != nil {
		_ = e.client.Close()
	}
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	if code == exitInterrupted && ctx.Err() == nil {
		code = exitFailure
	}
	var ee *exitError
	if !(errors.As(err, &ee) && ee.msg == "") {
		what := args[0]
		if subcommands[what] && len(args) > 1 && !strings.HasPrefix(args[1], "-") {
			what += " " + args[1]
		}
		fmt.Fprintf(stderr, "baton %s: %s\n", what, message(err))
	}
	return code
}

// exitCode maps an error to the documented exit codes.
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

// message is the text for stderr: the server's message, with what failed.
func message(err error) string {
	var be *baton.Error
	if errors.As(err, &be) {
		what := be.Op
		if be.Name != "" {
			what += " " + be.Name
		}
		m := be.Message()
		switch be.Code() {
		case codes.DeadlineExceeded:
			if errors.Is(err, baton.ErrWouldBlock) || strings.Contains(m, "context deadline exceeded") || m == "" {
				m = "timed out"
				if errors.Is(err, baton.ErrWouldBlock) {
					m = "would have to wait"
				}
			}
		case codes.Canceled:
			m = "interrupted"
		}
		return fmt.Sprintf("%s: %s (%s)", what, m, codeName(be.Code()))
	}
	return err.Error()
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
	}
	return strings.ToLower(c.String())
}

// newFlags makes a command's flag set, with the global flags in it.
func (e *env) newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	e.g.register(fs)
	return fs
}

// parse parses flags anywhere among the positional arguments, up to a "--";
// what follows "--" is returned as cmd (nil without "--").
func parse(fs *flag.FlagSet, args []string) (pos, cmd []string, err error) {
	for i, a := range args {
		if a == "--" {
			cmd = append([]string{}, args[i+1:]...)
			args = args[:i]
			break
		}
	}
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, nil, usageErr("see 'baton help'")
			}
			return nil, nil, usageErr("%v (see 'baton help')", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, cmd, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// need checks the number of positional arguments.
func need(fs *flag.FlagSet, pos []string, min, max int, what string) error {
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		return usageErr("usage: baton %s %s", fs.Name(), what)
	}
	return nil
}

// dial connects to the server (once).
func (e *env) dial() (*baton.Client, error) {
	if e.client != nil {
		return e.client, nil
	}
	ctx, cancel := context.WithTimeout(e.ctx, e.g.dialTimeout)
	defer cancel()
	c, err := baton.Dial(ctx, e.g.addr, baton.WithDialTimeout(e.g.dialTimeout),
		baton.WithSessionTTL(e.g.sessionTTL), baton.WithSessionLabel(label()))
	if err != nil {
		if e.ctx.Err() != nil {
			return nil, &exitError{exitInterrupted, "interrupted"}
		}
		return nil, err
	}
	e.client = c
	return c, nil
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
	d := 30 * time.Second
	if e.g.timeout > 0 {
		d = e.g.timeout
	}
	return context.WithTimeout(e.ctx, d)
}

// print writes the human text, or obj as one line of JSON with --json.
func (e *env) print(obj any, format string, args ...any) {
	if e.g.json {
		b, err := json.Marshal(obj)
		if err != nil {
			fmt.Fprintf(e.stderr, "baton: cannot encode JSON: %v\n", err)
			return
		}
		fmt.Fprintln(e.stdout, string(b))
		return
	}
	if format != "" {
		fmt.Fprintf(e.stdout, format, args...)
	}
}

// ownerOpts is who owns what a command acquires: --session ID (resumed and
// kept alive while baton runs, never closed by baton), else --ttl (a lease
// without session, surviving baton), else a session baton opens and closes.
// needDurable says the holding must survive baton's exit.
func (e *env) ownerOpts(ttl time.Duration, needDurable bool) ([]baton.HandleOption, error) {
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
	if needDurable {
		return nil, usageErr("without a command, give --ttl (a lease) or --session ID, or the holding would end with baton")
	}
	return nil, nil
}
