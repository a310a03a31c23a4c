package raftd

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/baton/baton/raft/wire"
)

// Config is what the flags of baton-raftd set. Defaults are in DefaultConfig.
type Config struct {
	ID             uint64        // this node's raft id, non-zero
	DataDir        string        // holds wal/ and snap/
	SocketPath     string        // Unix socket to listen on for the one batond connection
	SocketFD       int           // or: an inherited, connected stream socket (-1: none)
	PeerListen     string        // host:port of the peer listener
	InitialCluster []wire.Member // every member at bootstrap; with Join, the current members (address hints)
	Join           bool          // start empty and wait to be added by an existing cluster
	Tick           time.Duration // one raft tick (default 100 ms)
	ElectionTicks  int           // ticks without a leader before a follower campaigns (default 10)
	HeartbeatTicks int           // ticks between leader heartbeats (default 1)
	// Entries kept in the raft log below a snapshot's index after COMPACT, so
	// a follower slightly behind catches up from the log rather than a snapshot.
	SnapshotCatchupEntries uint64 // default 5000
	LogLevel               string // debug, info, warn, error (default info)
	// When the leader's connection to this follower closes and its peer
	// port refuses connections (its process is gone), forget it and elect a
	// new leader at once instead of waiting for the election timeout.
	FastFailover bool // default true
}

// DefaultConfig returns the defaults documented in --help.
func DefaultConfig() Config {
	return Config{
		SocketFD:               -1,
		Tick:                   100 * time.Millisecond,
		ElectionTicks:          10,
		HeartbeatTicks:         1,
		SnapshotCatchupEntries: 5000,
		LogLevel:               "info",
		FastFailover:           true,
	}
}

// ParseInitialCluster parses "1=peerhost:port@clienthost:port,2=...".
func ParseInitialCluster(s string) ([]wire.Member, error) {
	var out []wire.Member
	seen := map[uint64]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		idStr, addrs, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("member %q: want id=peerhost:port@clienthost:port", part)
		}
		id, err := strconv.ParseUint(idStr, 10, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("member %q: id must be a non-zero integer", part)
		}
		peer, client, ok := strings.Cut(addrs, "@")
		if !ok {
			return nil, fmt.Errorf("member %q: want id=peerhost:port@clienthost:port", part)
		}
		for _, a := range []string{peer, client} {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return nil, fmt.Errorf("member %q: address %q: %v", part, a, err)
			}
		}
		if seen[id] {
			return nil, fmt.Errorf("member id %d appears twice", id)
		}
		seen[id] = true
		out = append(out, wire.Member{ID: id, PeerAddr: peer, ClientAddr: client})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Validate checks the combination of flags.
func (c *Config) Validate() error {
	if c.ID == 0 {
		return fmt.Errorf("--id must be a non-zero integer")
	}
	if c.DataDir == "" {
		return fmt.Errorf("--data-dir is required")
	}
	if (c.SocketPath == "") == (c.SocketFD < 0) {
		return fmt.Errorf("exactly one of --socket and --socket-fd is required")
	}
	if c.PeerListen == "" {
		return fmt.Errorf("--peer-listen is required")
	}
	if c.Tick <= 0 || c.ElectionTicks <= 0 || c.HeartbeatTicks <= 0 || c.HeartbeatTicks >= c.ElectionTicks {
		return fmt.Errorf("need --tick-ms > 0 and 0 < --heartbeat-ticks < --election-ticks")
	}
	return nil
}

// self returns this node's entry in InitialCluster, if any.
func (c *Config) self() (wire.Member, bool) {
	for _, m := range c.InitialCluster {
		if m.ID == c.ID {
			return m, true
		}
	}
	return wire.Member{}, false
}
