package main

// End-to-end tests of the baton binary: built once by TestMain, run as a
// child process against a real batond.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
	"github.com/baton/baton/clients/go/internal/suiteserver"
)

var (
	addr  string
	binry string
	// suite is the batond at addr: plaintext, or with TLS and a token under
	// BATON_TEST_SECURE=1, which every command reaches through the
	// environment that batonCmd gives it (suite.Env()).
	suite *suiteserver.Server
)

// testVersion is the version the test binary is built with (-ldflags -X).
const testVersion = "test-1.2.3"

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "TestMain:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "baton-cli-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	binry = filepath.Join(dir, "baton")
	build := exec.Command("go", "build", "-ldflags", "-X main.version="+testVersion, "-o", binry, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return 0, fmt.Errorf("building baton: %w", err)
	}
	srv, err := suiteserver.Start()
	if err != nil {
		return 0, err
	}
	defer srv.Stop()
	addr, suite = srv.Addr, srv
	if srv.Creds != nil {
		fmt.Fprintf(os.Stderr, "TestMain: %s=1: batond at %s with TLS and principal %q's token\n",
			suiteserver.EnvVar, addr, suiteserver.Principal)
	}
	return m.Run(), nil
}

// ownServerTests are the tests that run baton only against servers of
// their own, with the TLS and token settings they give: their commands do
// not get the suite's (see ownServers).
var ownServerTests sync.Map // *testing.T -> struct{}

// ownServers says that t's commands reach only servers of its own (the
// TLS and token tests): under BATON_TEST_SECURE=1 they run without the
// suite server's BATON_CA, BATON_SERVER_NAME and BATON_TOKEN.
func ownServers(t *testing.T) {
	ownServerTests.Store(t, struct{}{})
	t.Cleanup(func() { ownServerTests.Delete(t) })
}

var seq atomic.Int64

func name(t *testing.T, what string) string {
	return fmt.Sprintf("clitest/%s/%s-%d-%d", t.Name(), what, os.Getpid(), seq.Add(1))
}

type result struct {
	stdout, stderr string
	code           int
}

// runB runs the binary with args (stdin may be nil) and waits for it.
func runB(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	cmd := batonCmd(t, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("baton %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{out.String(), errb.String(), code}
}

// batonCmd prepares the binary in its own process group (so that a terminal
// running the tests does not deliver signals to it), killed after 60 s.
func batonCmd(t *testing.T, args ...string) *exec.Cmd {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, binry, args...)
	// The TLS and token settings of the person running the tests would
	// apply to every command: the tests give their own (the suite server's
	// under BATON_TEST_SECURE=1).
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "BATON_TLS", "BATON_CA", "BATON_CERT", "BATON_KEY", "BATON_SERVER_NAME",
			"BATON_TOKEN", "BATON_TOKEN_FILE", "BATON_INSECURE_TOKEN":
		default:
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "BATON_ADDR="+addr)
	if _, own := ownServerTests.Load(t); !own {
		cmd.Env = append(cmd.Env, suite.Env()...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// ok runs baton and fails the test unless it exits 0.
func ok(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	r := runB(t, stdin, args...)
	if r.code != 0 {
		t.Fatalf("baton %v: exit %d, stderr: %s", args, r.code, r.stderr)
	}
	return r.stdout
}

// jsonOf runs baton --json and decodes its one line of output.
func jsonOf(t *testing.T, stdin string, args ...string) map[string]any {
	t.Helper()
	out := ok(t, stdin, append([]string{"--json"}, args...)...)
	var m map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &m); err != nil {
		t.Fatalf("baton --json %v printed %q: %v", args, out, err)
	}
	return m
}

func TestLockRunsCommandWithFencingTokenAndReleases(t *testing.T) {
	n := name(t, "lock")
	out := ok(t, "", "lock", n, "--", "sh", "-c", `echo "$BATON_FENCE $BATON_LOCK"`)
	fields := strings.Fields(out)
	if len(fields) != 2 || fields[1] != n {
		t.Fatalf("output %q", out)
	}
	if fence, err := strconv.ParseUint(fields[0], 10, 64); err != nil || fence == 0 {
		t.Fatalf("BATON_FENCE %q", fields[0])
	}
	// Released when the command exited (and the resource reclaimed).
	if r := runB(t, "", "describe", n); r.code != 4 {
		t.Fatalf("describe after the command: exit %d, %s", r.code, r.stdout)
	}
}

func TestLockPassesTheCommandsExitCodeThrough(t *testing.T) {
	n := name(t, "lock")
	if r := runB(t, "", "lock", n, "--", "sh", "-c", "exit 42"); r.code != 42 {
		t.Fatalf("exit %d, want 42 (stderr %s)", r.code, r.stderr)
	}
	if r := runB(t, "", "lock", n, "--", "/no/such/program"); r.code != 127 || !strings.Contains(r.stderr, "cannot run") {
		t.Fatalf("missing program: exit %d, stderr %s", r.code, r.stderr)
	}
	if r := runB(t, "", "describe", n); r.code != 4 {
		t.Fatalf("lock left held: %s", r.stdout)
	}
}

// Two `baton lock` processes on one name run their commands one after the
// other, never overlapping.
func TestTwoLockProcessesSerialize(t *testing.T) {
	n := name(t, "lock")
	log := filepath.Join(t.TempDir(), "log")
	script := fmt.Sprintf(`echo "start $BATON_FENCE" >> %s; sleep 0.4; echo "end $BATON_FENCE" >> %s`, log, log)
	var cmds []*exec.Cmd
	for i := 0; i < 3; i++ {
		c := batonCmd(t, "lock", n, "--", "sh", "-c", script)
		c.Stderr = os.Stderr
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("baton lock: %v", err)
		}
	}
	b, _ := os.ReadFile(log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 6 {
		t.Fatalf("log %q", b)
	}
	var last uint64
	for i := 0; i < 6; i += 2 {
		s, e := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if s[0] != "start" || e[0] != "end" || s[1] != e[1] {
			t.Fatalf("overlapping runs:\n%s", b)
		}
		f, _ := strconv.ParseUint(s[1], 10, 64)
		if f <= last {
			t.Fatalf("fences not increasing:\n%s", b)
		}
		last = f
	}
}

// waitLine reads r until a line equal to want.
func waitLine(t *testing.T, r *bufio.Reader, want string) {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		if strings.TrimSpace(line) == want {
			return
		}
		if err != nil {
			t.Fatalf("no line %q before %v", want, err)
		}
	}
}

func TestLockForwardsSignalsToTheCommand(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			n := name(t, "lock")
			c := batonCmd(t, "lock", n, "--", "sh", "-c",
				`trap 'echo "got signal"; exit 7' TERM INT; echo ready; while :; do sleep 0.05; done`)
			out, _ := c.StdoutPipe()
			c.Stderr = os.Stderr
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(out)
			waitLine(t, r, "ready")
			if err := c.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			waitLine(t, r, "got signal")
			_, _ = io.Copy(io.Discard, r)
			err := c.Wait()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
				t.Fatalf("baton exited with %v, want the command's 7", err)
			}
			if r := runB(t, "", "describe", n); r.code != 4 {
				t.Fatalf("lock left held after the signal: %s", r.stdout)
			}
		})
	}
}

func TestLockKilledCommandExitsWith128PlusSignal(t *testing.T) {
	r := runB(t, "", "lock", name(t, "lock"), "--", "sh", "-c", "kill -KILL $$")
	if r.code != 128+9 {
		t.Fatalf("exit %d, want 137", r.code)
	}
}

// If the session that holds the lock ends while the command runs, baton
// stops the command and exits 69 (its own 5, moved out of the command's way).
func TestLockLostWhileCommandRunsStopsIt(t *testing.T) {
	n := name(t, "lock")
	sess := jsonOf(t, "", "session", "open", "--ttl", "2s")["session_id"].(string)
	c := batonCmd(t, "--session", sess, "lock", n, "--", "sh", "-c",
		`trap 'echo stopped; exit 0' TERM; echo ready; while :; do sleep 0.05; done`)
	out, _ := c.StdoutPipe()
	var errb bytes.Buffer
	c.Stderr = &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(out)
	waitLine(t, r, "ready")
	ok(t, "", "session", "close", sess)
	waitLine(t, r, "stopped")
	_, _ = io.Copy(io.Discard, r)
	err := c.Wait()
	if ee, isExit := err.(*exec.ExitError); !isExit || ee.ExitCode() != 69 {
		t.Fatalf("exit %v, want 69; stderr %s", err, errb.String())
	}
	if !strings.Contains(errb.String(), "lost the lock") {
		t.Fatalf("stderr %q", errb.String())
	}
}

// waitForWaiters polls 'describe NAME' until the resource has n waiters.
func waitForWaiters(t *testing.T, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := runB(t, "", "--json", "describe", name)
		var info map[string]any
		if r.code == 0 && json.Unmarshal([]byte(r.stdout), &info) == nil && info["waiters"] == float64(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never had %d waiters (last: exit %d, %s)", name, n, r.code, r.stdout)
		}
		time.Sleep(20 * time.Millisecond) // poll
	}
}

func TestInterruptWhileWaitingForLockExits130AndLeavesNothing(t *testing.T) {
	n := name(t, "lock")
	token := strings.TrimSpace(ok(t, "", "lock", n, "--ttl", "30s"))
	c := batonCmd(t, "lock", n, "--", "true")
	var errb bytes.Buffer
	c.Stderr = &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitForWaiters(t, n, 1) // the second baton waits in line
	_ = c.Process.Signal(syscall.SIGINT)
	err := c.Wait()
	if ee, isExit := err.(*exec.ExitError); !isExit || ee.ExitCode() != 130 {
		t.Fatalf("exit %v, want 130; stderr %s", err, errb.String())
	}
	ok(t, "", "unlock", n, "--token", token)
	if r := runB(t, "", "describe", n); r.code != 4 {
		t.Fatalf("something left on the lock: %s", r.stdout)
	}
}

func TestExitCodes(t *testing.T) {
	n := name(t, "lock")
	token := strings.TrimSpace(ok(t, "", "lock", n, "--ttl", "30s"))
	closed := closedAddr(t)
	fut := name(t, "fut")
	ok(t, "", "future", "set-error", fut, "--code", "3", "--message", "nope")
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{}, 2, ""},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"sem"}, 2, "usage: baton sem acquire|delete|release"},
		{[]string{"sem", "acquir"}, 2, "did you mean acquire"},
		{[]string{"lock", n, "--no-such-flag"}, 2, "unknown flag: --no-such-flag (see 'baton lock --help')"},
		{[]string{"lock", n, "--ttl", "soon"}, 2, "invalid argument"},
		{[]string{"lock", n}, 2, "--ttl"},
		{[]string{"lock", "bad name", "--ttl", "1s"}, 2, "invalid argument"},
		{[]string{"lock", n, "--ttl", "1s", "--try"}, 3, "would have to wait"},
		{[]string{"--timeout", "200ms", "lock", n, "--ttl", "1s"}, 3, "timed out"},
		{[]string{"describe", name(t, "nothing")}, 4, "not found"},
		{[]string{"session", "describe", "12345"}, 4, "not found"},
		{[]string{"unlock", n, "--token", "1"}, 5, "failed precondition"},
		{[]string{"sem", "acquire", n, "--capacity", "2", "--ttl", "1s"}, 5, "failed precondition"},
		{[]string{"--addr", closed, "--dial-timeout", "300ms", "ls"}, 6, "unavailable"},
		{[]string{"future", "await", fut}, 7, "nope"},
		{[]string{"event", "is-set", name(t, "ev")}, 3, ""},
	}
	for _, c := range cases {
		r := runB(t, "", c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("baton %v: exit %d, stderr %q; want exit %d and %q", c.args, r.code, r.stderr, c.code, c.msg)
		}
	}
	ok(t, "", "unlock", n, "--token", token)
	if out := ok(t, "", "help"); !strings.Contains(out, "Exit codes:") {
		t.Fatal("help lacks the exit codes")
	}
}

// On a line that runs a command, the command's status is passed through and
// baton's own outcomes are 65..71, which the command's never are: a command
// exiting 65..71 is reported as 64.
func TestExitCodesOfCommandLinesKeepBatonsApartFromTheCommands(t *testing.T) {
	n := name(t, "lock")
	token := strings.TrimSpace(ok(t, "", "lock", n, "--ttl", "30s"))
	free := name(t, "free")
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\necho ran\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ran := filepath.Join(dir, "ran")
	closed := closedAddr(t)
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		// The command ran: its status, whatever it is.
		{[]string{"lock", free, "--", "sh", "-c", "exit 3"}, 3, ""},
		{[]string{"lock", free, "--", "sh", "-c", "exit 70"}, 64, "sh exited 70; reported as 64"},
		{[]string{"lock", free, "--", "sh", "-c", "exit 64"}, 64, ""},
		{[]string{"lock", free, "--", "sh", "-c", "exit 72"}, 72, ""},
		{[]string{"sem", "acquire", free + "s", "--capacity", "1", "--", "sh", "-c", "exit 5"}, 5, ""},
		// The command could not run: as shells say it.
		{[]string{"lock", free, "--", "no-such-program-" + n}, 127, "cannot run"},
		{[]string{"lock", free, "--", notExec}, 126, "cannot run"},
		// Baton's own outcomes: 64 + its code.
		{[]string{"lock", n, "--try", "--", "touch", ran}, 67, "would have to wait"},
		{[]string{"--timeout", "200ms", "lock", n, "--", "touch", ran}, 67, "timed out"},
		{[]string{"sem", "acquire", n, "--capacity", "1", "--", "touch", ran}, 69, "failed precondition"},
		{[]string{"lock", n, "--bad-flag", "--", "touch", ran}, 66, "unknown flag"},
		{[]string{"--addr", closed, "--dial-timeout", "300ms", "lock", n, "--", "touch", ran}, 70, "unavailable"},
		// --conflict-exit-code (flock's -E) for "not taken in time".
		{[]string{"lock", n, "--try", "-E", "0", "--", "touch", ran}, 0, ""},
		{[]string{"lock", n, "--try", "--conflict-exit-code", "9", "--", "touch", ran}, 9, "would have to wait"},
		{[]string{"lock", n, "--try", "-E", "9", "--ttl", "1s"}, 9, "would have to wait"},
		{[]string{"lock", n, "--try", "-E", "300", "--ttl", "1s"}, 2, "0..255"},
	}
	for _, c := range cases {
		r := runB(t, "", c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("baton %v: exit %d, stderr %q; want exit %d and %q", c.args, r.code, r.stderr, c.code, c.msg)
		}
	}
	if _, err := os.Stat(ran); err == nil {
		t.Error("a command ran although baton did not take the lock")
	}
	ok(t, "", "unlock", n, "--token", token)
	if r := runB(t, "", "describe", free); r.code != 4 {
		t.Errorf("%s left held: %s", free, r.stdout)
	}
	if d := jsonOf(t, "", "describe", free+"s"); len(d["holders"].([]any)) != 0 {
		t.Errorf("%s left held: %v", free+"s", d)
	}
}

// closedAddr is an address where nothing listens.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// replyOf runs baton --json and decodes its one line of output as m, the
// reply message of the call, failing on a field that m does not have.
func replyOf[M proto.Message](t *testing.T, m M, stdin string, args ...string) M {
	t.Helper()
	out := ok(t, stdin, append([]string{"--json"}, args...)...)
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("baton --json %v printed %q: want one line", args, out)
	}
	if err := protojson.Unmarshal([]byte(out), m); err != nil {
		t.Fatalf("baton --json %v printed %q, not a %s: %v", args, out, m.ProtoReflect().Descriptor().FullName(), err)
	}
	return m
}

// --json prints the reply message of each command's call in one schema:
// protojson with the proto field names and every field present.
func TestJSONIsTheReplyMessageOfTheCall(t *testing.T) {
	prefix := name(t, "json") + "/"
	l := replyOf(t, &batonv1.AcquireLockResponse{}, "", "lock", prefix+"lock", "--ttl", "30s")
	if l.GetToken() == 0 || l.GetOutcome() != batonv1.GrantOutcome_GRANT_OUTCOME_IMMEDIATE || l.GetExpiresIn() == nil {
		t.Fatalf("lock: %v", l)
	}
	token := strconv.FormatUint(l.GetToken(), 10)
	// Field names as in the proto, 64-bit integers as strings, durations in
	// seconds, enums by name.
	raw := jsonOf(t, "", "refresh", prefix+"lock", "--token", token, "--ttl", "90s")
	if s, _ := raw["expires_in"].(string); !strings.HasSuffix(s, "s") {
		t.Fatalf("refresh: %v", raw)
	}
	ls := replyOf(t, &batonv1.ListResponse{}, "", "ls", prefix)
	if len(ls.GetResources()) != 1 || ls.GetResources()[0].GetKind() != batonv1.ResourceKind_RESOURCE_KIND_LOCK || ls.GetResources()[0].GetHolders() != 1 {
		t.Fatalf("ls: %v", ls)
	}
	d := jsonOf(t, "", "describe", prefix+"lock")
	holders, _ := d["holders"].([]any)
	if d["kind"] != "RESOURCE_KIND_LOCK" || len(holders) != 1 || holders[0].(map[string]any)["token"] != token ||
		d["waiters"] != 0.0 || d["queue"] != nil {
		t.Fatalf("describe: %v", d)
	}
	if _, present := d["queue"]; !present {
		t.Fatalf("describe: unset fields left out: %v", d)
	}
	replyOf(t, &batonv1.ReleaseLockResponse{}, "", "unlock", prefix+"lock", "--token", token)

	q := prefix + "q"
	put := replyOf(t, &batonv1.PutResponse{}, "x\ny\n", "queue", "put", q)
	if len(put.GetItemIds()) != 2 || put.GetSize() != 2 {
		t.Fatalf("put: %v", put)
	}
	got := replyOf(t, &batonv1.GetResponse{}, "", "queue", "get", q, "--max", "5")
	if len(got.GetItems()) != 2 || got.GetItems()[0].GetText() != "x" || string(got.GetItems()[0].GetData()) != "x" {
		t.Fatalf("get: %v", got)
	}
	args := []string{"queue", "ack", q}
	for _, it := range got.GetItems() {
		args = append(args, strconv.FormatUint(it.GetReceipt(), 10))
	}
	if ack := jsonOf(t, "", args...); ack["acked"] != 2.0 || ack["unfinished"] != "0" {
		t.Fatalf("ack (zero values present): %v", ack)
	}
	ok(t, "1\n2\n3\n", "queue", "put", q)
	var consumed []*batonv1.Delivery
	for _, line := range strings.Split(strings.TrimSpace(ok(t, "", "--json", "queue", "consume", q, "--count", "3")), "\n") {
		dl := &batonv1.Delivery{}
		if err := protojson.Unmarshal([]byte(line), dl); err != nil {
			t.Fatalf("consume printed %q: %v", line, err)
		}
		consumed = append(consumed, dl)
	}
	if len(consumed) != 3 || consumed[0].GetText() != "1" || consumed[2].GetText() != "3" {
		t.Fatalf("consume: %v", consumed)
	}
	ok(t, "", "queue", "put", q, "left")
	if del := replyOf(t, &batonv1.DeleteQueueResponse{}, "", "queue", "delete", q); !del.GetDeleted() {
		t.Fatalf("queue delete: %v", del)
	}

	s := replyOf(t, &batonv1.OpenSessionResponse{}, "", "session", "open", "--ttl", "5s", "--label", "json")
	sid := strconv.FormatUint(s.GetSessionId(), 10)
	sd := replyOf(t, &batonv1.DescribeSessionResponse{}, "", "session", "describe", sid)
	if sd.GetLabel() != "json" || sd.GetTtl().AsDuration() != 5*time.Second {
		t.Fatalf("session describe: %v", sd)
	}
	replyOf(t, &batonv1.KeepAliveResponse{}, "", "session", "keepalive", sid)
	replyOf(t, &batonv1.CloseSessionResponse{}, "", "session", "close", sid)

	ev := prefix + "ev"
	replyOf(t, &batonv1.SetEventResponse{}, "", "event", "set", ev)
	if w := replyOf(t, &batonv1.WaitEventResponse{}, "", "event", "is-set", ev); w.GetState() != batonv1.EventState_EVENT_STATE_SET {
		t.Fatalf("is-set: %v", w)
	}
	replyOf(t, &batonv1.ClearEventResponse{}, "", "event", "clear", ev)
	r := runB(t, "", "--json", "event", "is-set", ev)
	w := &batonv1.WaitEventResponse{}
	if err := protojson.Unmarshal([]byte(r.stdout), w); err != nil || r.code != 3 || w.GetState() != batonv1.EventState_EVENT_STATE_CLEAR {
		t.Fatalf("is-set on a clear event: exit %d, %q, %v", r.code, r.stdout, err)
	}

	task := replyOf(t, &batonv1.SubmitTaskResponse{}, "", "task", "submit", prefix+"tasks", "p")
	if !strings.HasPrefix(task.GetTaskId(), prefix+"tasks#") {
		t.Fatalf("task submit: %v", task)
	}
	if c := replyOf(t, &batonv1.CancelTaskResponse{}, "", "task", "cancel", task.GetTaskId()); !c.GetCancelled() {
		t.Fatalf("task cancel: %v", c)
	}
	tm := replyOf(t, &batonv1.ScheduleTimerResponse{}, "", "timer", "after", prefix+"timer", "1h", "--set-event", prefix+"ev")
	if tm.GetDueIn() == nil {
		t.Fatalf("timer: %v", tm)
	}
	replyOf(t, &batonv1.CancelTimerResponse{}, "", "timer", "cancel", prefix+"timer")
	// A reply that makes baton exit non-zero is printed too.
	r = runB(t, "", "--json", "sem", "delete", prefix+"nothing")
	var del map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &del); err != nil || r.code != 4 || del["deleted"] != false {
		t.Fatalf("sem delete of nothing: exit %d, %q", r.code, r.stdout)
	}
}

func TestSemaphoreCommandLimitsConcurrency(t *testing.T) {
	n := name(t, "sem")
	dir := t.TempDir()
	// Each run creates a file while it holds a permit and counts the others.
	countsFile := filepath.Join(t.TempDir(), "counts")
	script := fmt.Sprintf(`f=%s/$$; touch $f; ls %s | wc -l >> %s; sleep 0.3; rm $f`, dir, dir, countsFile)
	var cmds []*exec.Cmd
	for i := 0; i < 4; i++ {
		c := batonCmd(t, "sem", "acquire", n, "--capacity", "2", "--", "sh", "-c", script)
		c.Stderr = os.Stderr
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(countsFile)
	counts := strings.Fields(string(b))
	if len(counts) != 4 {
		t.Fatalf("counts %q", b)
	}
	two := false
	for _, c := range counts {
		if c != "1" && c != "2" {
			t.Fatalf("%s commands ran at once with 2 permits (%q)", c, b)
		}
		two = two || c == "2"
	}
	if !two {
		t.Fatalf("never two commands at once with 2 permits (%q)", b)
	}
	tok := strings.TrimSpace(ok(t, "", "sem", "acquire", n, "--capacity", "2", "--count", "2", "--ttl", "30s"))
	if r := runB(t, "", "sem", "acquire", n, "--capacity", "2", "--try", "--", "true"); r.code != 67 {
		t.Fatalf("try with no permit free: exit %d", r.code)
	}
	if out := ok(t, "", "sem", "release", n, "--token", tok, "--count", "1"); !strings.Contains(out, "remaining 1") {
		t.Fatalf("partial release: %q", out)
	}
	ok(t, "", "sem", "release", n, "--token", tok)
}

func TestSemaphoreDeleteCommand(t *testing.T) {
	n := name(t, "sem")
	tok := strings.TrimSpace(ok(t, "", "sem", "acquire", n, "--capacity", "2", "--ttl", "30s"))
	if r := runB(t, "", "sem", "delete", n); r.code != 5 || !strings.Contains(r.stderr, "failed precondition") {
		t.Fatalf("delete while held: exit %d, stderr %q", r.code, r.stderr)
	}
	ok(t, "", "sem", "release", n, "--token", tok)
	if d := jsonOf(t, "", "sem", "delete", n); d["deleted"] != true {
		t.Fatalf("delete: %v", d)
	}
	if r := runB(t, "", "describe", n); r.code != 4 {
		t.Fatalf("describe after delete: exit %d", r.code)
	}
	if r := runB(t, "", "sem", "delete", n); r.code != 4 || !strings.Contains(r.stderr, "no semaphore") {
		t.Fatalf("delete again: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runB(t, "", "sem", "delete"); r.code != 2 {
		t.Fatalf("delete without NAME: exit %d", r.code)
	}
	ok(t, "", "sem", "acquire", n, "--capacity", "3", "--count", "3", "--try", "--", "true")
	ok(t, "", "sem", "delete", n)
}

func TestQueueEventFutureBarrierCommands(t *testing.T) {
	q := name(t, "q")
	ok(t, "", "queue", "put", q, "b", "a", "--order", "priority", "--priority", "2")
	ok(t, "", "queue", "put", q, "first", "--order", "priority", "--priority", "1")
	if out := ok(t, "", "queue", "get", q, "--ack"); out != "first\n" {
		t.Fatalf("get --ack: %q", out)
	}
	if out := ok(t, "", "queue", "consume", q, "--count", "2"); out != "b\na\n" {
		t.Fatalf("consume: %q", out)
	}
	ok(t, "", "queue", "join", q, "--timeout", "2s")
	if r := runB(t, "", "queue", "get", q, "--try"); r.code != 3 {
		t.Fatalf("get --try on empty: %d", r.code)
	}

	ev := name(t, "ev")
	waiter := batonCmd(t, "event", "wait", ev, "--timeout", "10s")
	if err := waiter.Start(); err != nil {
		t.Fatal(err)
	}
	waitForWaiters(t, ev, 1)
	ok(t, "", "event", "set", ev)
	if err := waiter.Wait(); err != nil {
		t.Fatalf("event wait: %v", err)
	}
	if out := ok(t, "", "event", "is-set", ev); out != "true\n" {
		t.Fatalf("is-set %q", out)
	}
	ok(t, "", "event", "clear", ev)

	f := name(t, "fut")
	ok(t, "42 rows", "future", "set", f, "-")
	if out := ok(t, "", "future", "await", f); out != "42 rows\n" {
		t.Fatalf("await %q", out)
	}
	if r := runB(t, "", "future", "set", f, "again"); r.code != 5 {
		t.Fatalf("second set: exit %d", r.code)
	}

	b := name(t, "barrier")
	other := batonCmd(t, "barrier", "wait", b, "--parties", "2", "--timeout", "10s")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	out := ok(t, "", "barrier", "wait", b, "--parties", "2", "--timeout", "10s")
	if err := other.Wait(); err != nil {
		t.Fatal(err)
	}
	if idx := strings.TrimSpace(out); idx != "0" && idx != "1" {
		t.Fatalf("index %q", out)
	}
}

func TestTaskWorkRunsCommandPerTask(t *testing.T) {
	q := name(t, "tasks")
	a := strings.TrimSpace(ok(t, "", "task", "submit", q, "hello"))
	b := strings.TrimSpace(ok(t, "", "task", "submit", q, "fail", "--max-attempts", "1"))
	out := ok(t, "", "task", "work", q, "--count", "2", "--", "sh", "-c",
		`read p; if [ "$p" = fail ]; then echo "cannot do it" >&2; exit 3; fi; printf "%s from %s" "$p" "$BATON_TASK_ID"`)
	if !strings.Contains(out, a+"\tsucceeded") || !strings.Contains(out, b+"\tfailed") {
		t.Fatalf("work output %q", out)
	}
	if got := ok(t, "", "task", "await", a); got != "hello from "+a+"\n" {
		t.Fatalf("await %q", got)
	}
	r := runB(t, "", "--json", "task", "await", b)
	o := &batonv1.TaskOutcome{}
	if err := protojson.Unmarshal([]byte(r.stdout), o); err != nil || r.code != 7 || o.GetState() != batonv1.TaskState_TASK_STATE_FAILED ||
		o.GetError().GetCode() != 3 || o.GetError().GetMessage() != "cannot do it" {
		t.Fatalf("await of the failed task: exit %d %q %v", r.code, r.stdout, err)
	}
	// With --json, a TaskOutcome per task run.
	c := strings.TrimSpace(ok(t, "", "task", "submit", q, "json"))
	line := ok(t, "", "--json", "task", "work", q, "--count", "1", "--", "sh", "-c", `tr a-z A-Z`)
	wo := &batonv1.TaskOutcome{}
	if err := protojson.Unmarshal([]byte(line), wo); err != nil || wo.GetTaskId() != c ||
		wo.GetState() != batonv1.TaskState_TASK_STATE_SUCCEEDED || wo.GetText() != "JSON" || wo.GetAttempts() != 1 {
		t.Fatalf("work --json: %q %v", line, err)
	}
	// take / heartbeat / complete by hand.
	id := strings.TrimSpace(ok(t, "", "task", "submit", q, "manual"))
	taken := strings.Split(strings.TrimSpace(ok(t, "", "task", "take", q, "--visibility", "30s")), "\t")
	if len(taken) != 3 || taken[0] != id || taken[2] != "manual" {
		t.Fatalf("take %q", taken)
	}
	ok(t, "", "task", "heartbeat", id, "--attempt", taken[1])
	ok(t, "", "task", "complete", id, "--attempt", taken[1], "done")
	if out := ok(t, "", "task", "wait", id, "--mode", "first-completed"); out != id+"\tsucceeded\n" {
		t.Fatalf("wait %q", out)
	}
}
