package main

// The command tree: the root with the global flags, the help topics, and
// helpers shared by the commands (cmd_*.go).

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// annotRunsChild marks the commands that pass the status of a command run
// after "--" through (lock, sem acquire): on their lines baton's own exit
// codes move to 65..71.
const annotRunsChild = "baton/passes-child-status"

const exitCodesText = `Exit codes:
  0    success
  1    any other error
  2    bad usage (flags, arguments), or the server said INVALID_ARGUMENT
  3    timed out (--timeout), would block (--try), or 'event is-set' on a clear event
  4    not found (session, resource, task, timer to cancel)
  5    conflict: not held, wrong kind, already done (FAILED_PRECONDITION), aborted
       (session ended, barrier broken, queue deleted)
  6    the server is unreachable or shutting down
  7    the awaited future or task failed or was cancelled
  130  interrupted (SIGINT/SIGTERM) while baton itself waited
With a command to run ('lock NAME -- CMD', 'sem acquire NAME -- CMD'):
  CMD's status when CMD ran (128+N if it was killed by signal N)
  65-71  baton's own outcome, 64 + the code above: 67 the lock was not taken in
         time (--timeout, --try), 69 the lock was lost while CMD ran, 70 the
         server is unreachable, 66 bad usage ...
  64     CMD itself exited 64-71 (stderr says with what), so that 65-71 always
         mean baton
  126    CMD is not executable, 127 CMD was not found (as in shells)
  --conflict-exit-code N replaces 3 (or 67) for "not taken in time", as flock -E does.`

const exitCodesLong = exitCodesText + `

Scripts can tell baton's outcome from the command's without parsing stderr:

  baton lock db/migrate --try -- ./migrate.sh
  case $? in
    0)     echo migrated ;;
    67)    echo "another migration holds the lock" ;;
    6[5-9]|7[01]) echo "baton failed, migrate.sh did not run to the end" ;;
    *)     echo "migrate.sh failed" ;;
  esac

Every error is one line on stderr, e.g.
  baton lock: Locks.Acquire demo/x: would have to wait (timeout)`

const jsonLong = `With --json, baton prints on stdout the reply message of the call a command makes,
in the protobuf JSON mapping (google.golang.org/protobuf/encoding/protojson), one
object per line:

  - field names as in the .proto files (snake_case: "session_id"), as grpcurl prints them;
  - every field, also at its zero value (0, false, "", []); an unset message is null;
  - 64-bit integers (ids, tokens, counts) as strings: "token": "1796514187760247";
  - enums by name: "outcome": "GRANT_OUTCOME_IMMEDIATE", "state": "EVENT_STATE_SET";
  - durations as strings in seconds: "expires_in": "29.998s"; bytes as base64
    ("data", "value"), with "text" beside them when the server sends it.

The message is the reply of the RPC named in each command's help, e.g. 'lock' prints a
baton.v1.AcquireLockResponse and 'describe' a baton.v1.DescribeResponse (see
proto/baton/v1/). Streaming commands ('event watch', 'queue consume') print one
message per line as they arrive. The reply is printed whenever the server answered,
also when baton then exits non-zero because of what it says ('sem delete' of nothing:
{"deleted":false}, exit 4). The exceptions, each said in its command's help:
  - ls: one ListResponse with the resources of every page;
  - event is-set on a clear event: {"state":"EVENT_STATE_CLEAR", ...} (the server's
    answer is DEADLINE_EXCEEDED), exit 3;
  - queue consume: one baton.v1.Delivery per line; task work: one baton.v1.TaskOutcome
    per task run;
  - version: {"client":{...},"server":{ServerInfoResponse}};
  - snapshot save: the first SnapshotChunk without its data ({"index","total_bytes"});
  - lock/sem acquire with a command, session keepalive --follow: nothing.
Errors stay one line of text on stderr; the exit code says what happened.`

func newRoot(e *env) *cobra.Command {
	v, _, _ := clientVersion()
	root := &cobra.Command{
		Use:   "baton",
		Short: "Command-line client of the Baton coordination server",
		Long: `baton is the command-line client of the Baton coordination server: flock and
etcdctl for every Baton primitive (locks, semaphores, queues, events, futures,
barriers, tasks, timers, sessions), and the operator's commands (ls, describe,
server-info, version, health, snapshot save).

Flags may come anywhere on the line before "--"; what follows "--" is a command to
run ('lock', 'sem acquire', 'task work'). 'baton help CMD' or 'baton CMD --help'
documents one command; 'baton completion bash|zsh|fish|powershell' prints a shell
completion script.

Output is text for a person, or with --json the reply message of the call as
protojson, one object per line ('baton help json').

TLS: plaintext unless --tls, --ca, --cert, --key or --server-name is given (or
$BATON_TLS=1, $BATON_CA, $BATON_CERT, $BATON_KEY, $BATON_SERVER_NAME is set): --ca
trusts a CA (default: the system's roots), --cert and --key present a client
certificate to a batond started with --client_ca. A certificate the client cannot
verify, or that the server refuses, makes the server unreachable (exit 6); a missing
or unreadable file is bad usage (exit 2). A command baton runs gets the settings in
its environment, with BATON_ADDR.

Token: --auth-token TOKEN or --auth-token-file FILE ($BATON_TOKEN, $BATON_TOKEN_FILE)
sends "authorization: Bearer TOKEN" on every call. It is sent only over TLS or to a
loopback address (127.0.0.0/8, ::1, localhost, unix:); to another address in
plaintext baton refuses (exit 2) unless --insecure-token ($BATON_INSECURE_TOKEN=1).
Prefer the file or the variable: a command line is visible to other users (ps). An
empty or unreadable file, or a token with whitespace, is bad usage (exit 2). A
command baton runs gets the token in effect as $BATON_TOKEN or $BATON_TOKEN_FILE.

` + exitCodesText,
		Example: `  baton lock billing/migrate -- ./migrate.sh     # runs while holding the lock; $BATON_FENCE is its token
  baton queue put jobs "resize 1.png" && baton queue get jobs --ack
  baton ls demo/ --json
  baton --addr db1:7411 health
  baton --addr db1:7411 --ca ca.pem --cert client.pem --key client-key.pem health   # (mutual) TLS`,
		Version:       v,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErr("unknown command %q%s", args[0], suggest(cmd, args[0]))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			_ = cmd.Help()
			return &exitError{exitUsage, ""}
		},
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	root.SetVersionTemplate("baton {{.Version}}\n")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageErr("%v", err) })
	f := root.PersistentFlags()
	f.StringVar(&e.g.addr, "addr", e.g.addr, "server HOST:PORT, or a cluster's nodes as HOST:PORT,HOST:PORT,... ($BATON_ADDR when set)")
	f.DurationVar(&e.g.timeout, "timeout", 0, "give up waiting after this long (exit 3); default: wait as long as it takes; calls that do not wait are bounded by 30s")
	f.BoolVar(&e.g.json, "json", false, "print the reply message of the call as protojson, one object per line ('baton help json')")
	f.Uint64Var(&e.g.session, "session", 0, "own what is acquired by this existing session (see 'session open')")
	f.DurationVar(&e.g.sessionTTL, "session-ttl", e.g.sessionTTL, "TTL of the session baton opens for what it holds while it runs")
	f.DurationVar(&e.g.dialTimeout, "dial-timeout", e.g.dialTimeout, "how long to try to reach the server")
	f.BoolVar(&e.g.useTLS, "tls", e.g.useTLS, "connect over TLS, trusting the system's root CAs unless --ca; implied by --ca, --cert, --key, --server-name ($BATON_TLS=1 when set)")
	f.StringVar(&e.g.tls.CAFile, "ca", e.g.tls.CAFile, "PEM CA bundle that signs the server's certificate; implies --tls ($BATON_CA when set)")
	f.StringVar(&e.g.tls.CertFile, "cert", e.g.tls.CertFile, "PEM client certificate for mutual TLS, with --key; implies --tls ($BATON_CERT when set)")
	f.StringVar(&e.g.tls.KeyFile, "key", e.g.tls.KeyFile, "PEM private key (unencrypted) of --cert; implies --tls ($BATON_KEY when set)")
	f.StringVar(&e.g.tls.ServerName, "server-name", e.g.tls.ServerName, "name the server's certificate must hold (default: the host of --addr); implies --tls ($BATON_SERVER_NAME when set)")
	f.StringVar(&e.g.flagToken, "auth-token", "", "bearer token sent on every call as 'authorization: Bearer TOKEN'; only over TLS or to loopback ($BATON_TOKEN when set; prefer --auth-token-file)")
	f.StringVar(&e.g.flagTokenFile, "auth-token-file", "", "file holding the bearer token (whitespace around it ignored) ($BATON_TOKEN_FILE when set)")
	f.BoolVar(&e.g.insecureToken, "insecure-token", e.g.insecureToken, "send the token also in plaintext to an address that is not loopback, for a batond --allow_plaintext on a protected network ($BATON_INSECURE_TOKEN=1 when set)")
	e.flags = f

	root.AddGroup(&cobra.Group{ID: "prims", Title: "Coordination:"},
		&cobra.Group{ID: "ops", Title: "Inspection and operation:"})
	for _, c := range []*cobra.Command{lockCmd(e), unlockCmd(e), refreshCmd(e), semCmd(e),
		queueCmd(e), eventCmd(e), futureCmd(e), barrierCmd(e), taskCmd(e), timerCmd(e), sessionCmd(e)} {
		c.GroupID = "prims"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{listCmd(e), describeCmd(e),
		versionCmd(e), serverInfoCmd(e), snapshotCmd(e), membersCmd(e), healthCmd(e)} {
		c.GroupID = "ops"
		root.AddCommand(c)
	}
	root.AddCommand(
		&cobra.Command{Use: "exit-codes", Short: "The exit codes of baton, and how scripts tell baton's from a command's", Long: exitCodesLong},
		&cobra.Command{Use: "json", Short: "The JSON that --json prints", Long: jsonLong},
	)
	root.SetHelpCommand(helpCmd(root))
	// Made now rather than by Execute, to give it examples.
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		switch c.Name() {
		case "completion":
			c.Example = `  source <(baton completion bash)                  # this shell
  baton completion bash > /etc/bash_completion.d/baton
  baton completion zsh > "${fpath[1]}/_baton"
  baton completion fish > ~/.config/fish/completions/baton.fish`
			for _, s := range c.Commands() {
				s.Example = fmt.Sprintf("  baton completion %s > baton.%s", s.Name(), s.Name())
			}
		}
	}
	return root
}

// helpCmd is 'baton help [COMMAND...]': cobra's, except that an unknown
// topic is a usage error rather than the root's help.
func helpCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND...]",
		Short: "Help about any command",
		Long: `Prints the help of a command ('baton help queue get' is 'baton queue get --help'),
or of a topic: 'baton help exit-codes', 'baton help json'.

Exit codes: 0 printed; 2 no such command or topic.`,
		Example: "  baton help lock\n  baton help exit-codes",
		RunE: func(cmd *cobra.Command, args []string) error {
			target, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 {
				return usageErr("no help topic %q", strings.Join(args, " "))
			}
			target.InitDefaultHelpFlag() // as running it would: its help lists -h
			target.InitDefaultVersionFlag()
			return target.Help()
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			target, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []string
			for _, c := range target.Commands() {
				if c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand() {
					if strings.HasPrefix(c.Name(), toComplete) {
						names = append(names, c.Name()+"\t"+c.Short)
					}
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
	}
}

// suggest is " (did you mean ...?)" for a mistyped subcommand, or "".
func suggest(cmd *cobra.Command, arg string) string {
	if s := cmd.SuggestionsFor(arg); len(s) > 0 {
		return fmt.Sprintf(" (did you mean %s?)", strings.Join(s, ", "))
	}
	return ""
}

// group makes a command whose arguments start with a subcommand.
func group(use, short, long, example string, subs ...*cobra.Command) *cobra.Command {
	long += "\n\nExit codes: those of the subcommand ('baton " + strings.Fields(use)[0] +
		" SUBCOMMAND --help'); 2 without a known subcommand."
	c := &cobra.Command{Use: use, Short: short, Long: long, Example: example,
		RunE: func(cmd *cobra.Command, args []string) error {
			var names []string
			for _, s := range cmd.Commands() {
				names = append(names, s.Name())
			}
			if len(args) == 0 {
				return usageErr("usage: %s %s ...", cmd.CommandPath(), strings.Join(names, "|"))
			}
			return usageErr("unknown subcommand %q%s; usage: %s %s ...", args[0], suggest(cmd, args[0]),
				cmd.CommandPath(), strings.Join(names, "|"))
		},
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	c.AddCommand(subs...)
	return c
}

// exits is the "Exit codes" paragraph of a command's help: its own codes,
// then those every command shares (unless its own say otherwise), wrapped.
func exits(own ...string) string {
	codes := append([]string{}, own...)
	for _, common := range []string{"2 bad usage", "6 server unreachable", "1 other errors"} {
		mentioned := false
		for _, o := range own {
			mentioned = mentioned || strings.HasPrefix(o, common[:2])
		}
		if !mentioned {
			codes = append(codes, common)
		}
	}
	return "\n\n" + wrap("Exit codes: "+strings.Join(codes, "; ")+" ('baton help exit-codes').", 88)
}

// wrap breaks text into lines of at most width columns, between words.
func wrap(text string, width int) string {
	var b strings.Builder
	col := 0
	for _, w := range strings.Fields(text) {
		if col > 0 && col+1+len(w) > width {
			b.WriteString("\n")
			col = 0
		} else if col > 0 {
			b.WriteString(" ")
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	return b.String()
}

// split returns the positional arguments before "--" and the command after
// it (nil without "--").
func split(cmd *cobra.Command, args []string) (pos, child []string) {
	if at := cmd.ArgsLenAtDash(); at >= 0 {
		return args[:at], append([]string{}, args[at:]...)
	}
	return args, nil
}

// need checks the number of positional arguments (max < 0: no limit).
func need(cmd *cobra.Command, pos []string, min, max int) error {
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		return usageErr("usage: %s", cmd.UseLine())
	}
	return nil
}

// noChild refuses a command after "--" where none is run.
func noChild(cmd *cobra.Command, args []string) ([]string, error) {
	pos, child := split(cmd, args)
	if child != nil {
		return nil, usageErr("%s runs no command: nothing may follow --", cmd.CommandPath())
	}
	return pos, nil
}

// leaf makes a command taking between min and max positional arguments
// (max < 0: no limit) and no command after "--".
func leaf(use, short, long, example string, min, max int, run func(cmd *cobra.Command, pos []string) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Long: long, Example: example,
		RunE: func(cmd *cobra.Command, args []string) error {
			pos, err := noChild(cmd, args)
			if err != nil {
				return err
			}
			if err := need(cmd, pos, min, max); err != nil {
				return err
			}
			return run(cmd, pos)
		},
	}
}
