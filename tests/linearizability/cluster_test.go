package linearizability

// A 3-node batond cluster on 127.0.0.1, as tests/python/test_cluster.py's
// Cluster starts it: each batond starts its own baton-raftd; the leader is
// the node whose health for the service "baton.v1" is SERVING. Every process
// is stopped by its pid: batond with SIGKILL, then the baton-raftd it started
// (its child, found in /proc before the kill) if it has not exited by itself.

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

type node struct {
	id         int // raft node id, 1-based
	clientPort int
	peerPort   int
	dataDir    string
	logPath    string
	health     healthpb.HealthClient
	conn       *grpc.ClientConn

	mu     sync.Mutex
	cmd    *exec.Cmd
	raftd  int           // pid of its baton-raftd, 0 if unknown
	done   chan struct{} // closed when cmd has been waited for
	starts int
}

type cluster struct {
	closed atomic.Bool // no start after close
	batond string
	dir    string // data directories and logs
	peers  string
	nodes  []*node
}

func (n *node) addr() string { return fmt.Sprintf("127.0.0.1:%d", n.clientPort) }

// freePorts returns k distinct ports that were free a moment ago, below the
// kernel's ephemeral range: a node restarted on its port (its address is in
// --peers) must find it free, and a port from the ephemeral range may
// meanwhile become the local end of some other process's outgoing
// connection.
func freePorts(k int) ([]int, error) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 12000 {
				low = v
			}
		}
	}
	seen := map[int]bool{}
	var ports []int
	for tries := 0; len(ports) < k && tries < 1000; tries++ {
		p := 10000 + rand.Intn(low-10000)
		if seen[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		seen[p] = true
		ports = append(ports, p)
	}
	if len(ports) < k {
		return nil, fmt.Errorf("found %d of %d free ports below the ephemeral range", len(ports), k)
	}
	return ports, nil
}

func newCluster(batond, dir string, size int) (*cluster, error) {
	ports, err := freePorts(2 * size)
	if err != nil {
		return nil, err
	}
	c := &cluster{batond: batond, dir: dir}
	var peers []string
	for i := 0; i < size; i++ {
		n := &node{id: i + 1, clientPort: ports[i], peerPort: ports[size+i],
			dataDir: filepath.Join(dir, fmt.Sprintf("node%d", i+1)),
			logPath: filepath.Join(dir, fmt.Sprintf("node%d.log", i+1))}
		// One health connection per node for the whole test, reconnecting
		// quickly after the node comes back.
		n.conn, err = grpc.NewClient(n.addr(),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, MaxDelay: 200 * time.Millisecond},
				MinConnectTimeout: time.Second,
			}))
		if err != nil {
			c.close()
			return nil, err
		}
		n.health = healthpb.NewHealthClient(n.conn)
		c.nodes = append(c.nodes, n)
		peers = append(peers, fmt.Sprintf("%d=127.0.0.1:%d@127.0.0.1:%d", n.id, n.peerPort, n.clientPort))
	}
	c.peers = strings.Join(peers, ",")
	return c, nil
}

// addrs is every node's client address, starting with node first (so that
// clients spread over the nodes with pick-first).
func (c *cluster) addrs(first int) string {
	var out []string
	for k := 0; k < len(c.nodes); k++ {
		out = append(out, c.nodes[(first+k)%len(c.nodes)].addr())
	}
	return strings.Join(out, ",")
}

func (c *cluster) running(i int) bool {
	n := c.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// start starts node i on its data directory and waits until its process
// answers health checks (the empty service: "the process is up").
func (c *cluster) start(i int) error {
	n := c.nodes[i]
	if err := os.MkdirAll(n.dataDir, 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "\n===== start %d of node %d at %s =====\n", n.starts+1, n.id, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(c.batond,
		"--listen", n.addr(),
		"--node_id", strconv.Itoa(n.id),
		"--peers", c.peers,
		"--shards", "2",
		"--orphan_grace_ms", "5000",
		"--data_dir", n.dataDir)
	cmd.Stdout, cmd.Stderr = logf, logf
	// If this test process dies (e.g. go test's -timeout), the kernel kills
	// batond, whose baton-raftd then exits as its socket closes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(done)
	}()
	n.mu.Lock()
	n.cmd, n.done, n.raftd = cmd, done, 0
	n.starts++
	n.mu.Unlock()
	if c.closed.Load() { // close ran meanwhile (a test that gave up)
		c.kill(i)
		return fmt.Errorf("node %d: the cluster was closed", n.id)
	}

	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("node %d exited during startup (%s); log %s:\n%s", n.id, cmd.ProcessState, n.logPath, tail(n.logPath, 3000))
		default:
		}
		if c.healthStatus(i, "") == healthpb.HealthCheckResponse_SERVING {
			if pid := childPid(cmd.Process.Pid); pid > 0 {
				n.mu.Lock()
				n.raftd = pid
				n.mu.Unlock()
			}
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.kill(i)
	return fmt.Errorf("node %d did not answer health checks within 20s; log %s:\n%s", n.id, n.logPath, tail(n.logPath, 3000))
}

// kill stops node i with SIGKILL (by pid), waits for it, then makes sure
// the baton-raftd it started is gone too (it exits by itself when batond's
// socket closes; SIGKILL by pid after 3 s otherwise).
func (c *cluster) kill(i int) {
	n := c.nodes[i]
	n.mu.Lock()
	cmd, done, raftd := n.cmd, n.done, n.raftd
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	if raftd == 0 {
		raftd = childPid(cmd.Process.Pid)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	if raftd > 0 {
		deadline := time.Now().Add(3 * time.Second)
		for alive(raftd) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if alive(raftd) {
			_ = syscall.Kill(raftd, syscall.SIGKILL)
			for k := 0; k < 200 && alive(raftd); k++ {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
}

func (c *cluster) stopAll() {
	var wg sync.WaitGroup
	for i := range c.nodes {
		wg.Add(1)
		go func(i int) { defer wg.Done(); c.kill(i) }(i)
	}
	wg.Wait()
}

func (c *cluster) close() {
	c.closed.Store(true)
	c.stopAll()
	for _, n := range c.nodes {
		if n.conn != nil {
			n.conn.Close()
		}
	}
}

func (c *cluster) healthStatus(i int, service string) healthpb.HealthCheckResponse_ServingStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	resp, err := c.nodes[i].health.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN
	}
	return resp.GetStatus()
}

// leader waits for exactly one running node serving "baton.v1" and returns
// its index.
func (c *cluster) leader(timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		var leaders []int
		for i := range c.nodes {
			if c.running(i) && c.healthStatus(i, "baton.v1") == healthpb.HealthCheckResponse_SERVING {
				leaders = append(leaders, i)
			}
		}
		if len(leaders) == 1 {
			return leaders[0], nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("no single leader within %s (serving baton.v1: %v)", timeout, leaders)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *cluster) logTails(limit int) string {
	var b strings.Builder
	for _, n := range c.nodes {
		fmt.Fprintf(&b, "--- node %d (%s):\n%s\n", n.id, n.logPath, tail(n.logPath, limit))
	}
	return b.String()
}

// childPid is the pid of a child of pid (batond has one: its baton-raftd),
// 0 if none is found.
func childPid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			if p, err := strconv.Atoi(f[0]); err == nil {
				return p
			}
		}
	}
	// Children of other threads.
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			if p, err := strconv.Atoi(f[0]); err == nil {
				return p
			}
		}
	}
	return 0
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if k := strings.LastIndexByte(s, ')'); k >= 0 && k+2 < len(s) {
		return s[k+2] != 'Z' && s[k+2] != 'X'
	}
	return true
}

func tail(path string, limit int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "(no log)"
		}
		return err.Error()
	}
	if len(b) > limit {
		b = b[len(b)-limit:]
	}
	return string(b)
}
