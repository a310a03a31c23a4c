// Command baton-raftd is the replication companion of batond: one etcd raft
// node per batond, started and supervised by it, talking to it over one local
// stream socket. See raft/README.md and raft/PROTOCOL.md.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/baton/baton/raft/internal/raftd"
)

// termGrace is how long baton-raftd outlives a SIGTERM or SIGINT.
const termGrace = 15 * time.Second

const usage = `baton-raftd: replicates batond's log with etcd's raft library.

One baton-raftd runs beside each batond of a cluster. It accepts exactly one
connection from batond (on --socket, or an inherited socket with --socket-fd),
speaks the protocol of raft/PROTOCOL.md on it, and exits as soon as that
connection closes (exit code 3). Raft state lives in --data-dir (wal/, snap/).

Start a new 3-node cluster (same --initial-cluster on every node):
  baton-raftd --id 1 --data-dir /var/lib/baton/raft --socket /run/baton/raft.sock \
    --peer-listen 10.0.0.1:7380 \
    --initial-cluster 1=10.0.0.1:7380@10.0.0.1:7379,2=10.0.0.2:7380@10.0.0.2:7379,3=10.0.0.3:7380@10.0.0.3:7379
Add a 4th node: ADD_MEMBER on the leader, then start it with --join and the
current members (itself included) as --initial-cluster.
A restarted node ignores --initial-cluster and --join: its WAL knows the members.

SIGTERM and SIGINT start a 15 s grace period (batond may still transfer
leadership); baton-raftd exits when batond closes the socket or the grace ends.

Exit codes: 0 never (it runs until batond goes away), 1 fatal error (FATAL was
sent to batond when it was connected), 2 bad flags, 3 batond's socket closed.

Flags:
`

func main() {
	cfg := raftd.DefaultConfig()
	var cluster string
	var tickMS int
	fs := flag.NewFlagSet("baton-raftd", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, usage)
		fs.PrintDefaults()
	}
	fs.Uint64Var(&cfg.ID, "id", 0, "this node's raft id (non-zero, unique in the cluster, never reused)")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "directory for the raft WAL (wal/) and raft snapshots (snap/)")
	fs.StringVar(&cfg.SocketPath, "socket", "", "Unix socket path to listen on; exactly one batond connection is accepted (within 60 s), then the path is removed")
	fs.IntVar(&cfg.SocketFD, "socket-fd", -1, "instead of --socket: an inherited, already connected stream socket (e.g. one end of socketpair(2))")
	fs.StringVar(&cfg.PeerListen, "peer-listen", "", "host:port for raft traffic from the other members")
	fs.StringVar(&cluster, "initial-cluster", "", "members as id=peerhost:port@clienthost:port,... (client = the gRPC address batond serves on that node)")
	fs.BoolVar(&cfg.Join, "join", false, "a new node added to an existing cluster by ADD_MEMBER: start empty, do not bootstrap")
	fs.IntVar(&tickMS, "tick-ms", int(cfg.Tick/time.Millisecond), "raft tick in milliseconds")
	fs.IntVar(&cfg.ElectionTicks, "election-ticks", cfg.ElectionTicks, "ticks without hearing from a leader before a follower campaigns (randomised up to 2x)")
	fs.IntVar(&cfg.HeartbeatTicks, "heartbeat-ticks", cfg.HeartbeatTicks, "ticks between leader heartbeats")
	fs.Uint64Var(&cfg.SnapshotCatchupEntries, "snapshot-catchup-entries", cfg.SnapshotCatchupEntries, "entries kept in the raft log below a COMPACT index, for followers slightly behind")
	fs.BoolVar(&cfg.FastFailover, "fast-failover", cfg.FastFailover, "when the leader's process is gone (its connection closed and its peer port refuses connections), forget it and elect a new leader at once instead of after the election timeout")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error (log goes to stderr)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		os.Exit(raftd.ExitUsage)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "baton-raftd: unexpected arguments %v\n", fs.Args())
		os.Exit(raftd.ExitUsage)
	}
	cfg.Tick = time.Duration(tickMS) * time.Millisecond
	if cluster != "" {
		ms, err := raftd.ParseInitialCluster(cluster)
		if err != nil {
			fmt.Fprintf(os.Stderr, "baton-raftd: --initial-cluster: %v\n", err)
			os.Exit(raftd.ExitUsage)
		}
		cfg.InitialCluster = ms
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "baton-raftd: %v\n", err)
		os.Exit(raftd.ExitUsage)
	}
	// batond owns this process: it stops it by closing the socket. A SIGTERM
	// or SIGINT sent to the whole process group (systemd, Ctrl-C) must not
	// kill baton-raftd before batond has had time to hand leadership over,
	// so it only starts a grace period.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "baton-raftd: %v: exiting when batond closes the socket, or in %v\n", sig, termGrace)
		time.Sleep(termGrace)
		fmt.Fprintf(os.Stderr, "baton-raftd: batond did not close the socket within %v of %v; exiting\n", termGrace, sig)
		os.Exit(raftd.ExitFatal)
	}()
	if err := raftd.Run(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "baton-raftd: %v\n", err)
		os.Exit(raftd.ExitFatal)
	}
}
