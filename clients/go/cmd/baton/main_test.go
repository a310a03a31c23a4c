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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/baton/baton/clients/go/internal/testserver"
)

var (
	addr  string
	binry string
)

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
	build := exec.Command("go", "build", "-o", binry, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return 0, fmt.Errorf("building baton: %w", err)
	}
	srv, err := testserver.Start()
	if err != nil {
		return 0, err
	}
	defer srv.Stop()
	addr = srv.Addr
	return m.Run(), nil
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
	cmd.Env = append(os.Environ(), "BATON_ADDR="+addr)
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
	if r := runB(t, "", "lock", n, "--", "/no/such/program"); r.code != 1 || !strings.Contains(r.stderr, "cannot run") {
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
// stops the command and exits 5.
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
	if ee, isExit := err.(*exec.ExitError); !isExit || ee.ExitCode() != 5 {
		t.Fatalf("exit %v, want 5; stderr %s", err, errb.String())
	}
	if !strings.Contains(errb.String(), "lost the lock") {
		t.Fatalf("stderr %q", errb.String())
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
	deadline := time.Now().Add(5 * time.Second)
	for { // until the second baton waits in line
		var info map[string]any
		if err := json.Unmarshal([]byte(ok(t, "", "--json", "describe", n)), &info); err != nil {
			t.Fatal(err)
		}
		if info["waiters"] != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("second baton never waited")
		}
		time.Sleep(20 * time.Millisecond)
	}
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
	closed := func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return ln.Addr().String()
	}()
	fut := name(t, "fut")
	ok(t, "", "future", "set-error", fut, "--code", "3", "--message", "nope")
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{}, 2, ""},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"lock", n, "--no-such-flag"}, 2, "flag provided but not defined"},
		{[]string{"lock", n}, 2, "--ttl"},
		{[]string{"lock", "bad name", "--ttl", "1s"}, 2, "invalid argument"},
		{[]string{"lock", n, "--try", "--", "true"}, 3, "would have to wait"},
		{[]string{"--timeout", "200ms", "lock", n, "--", "true"}, 3, "timed out"},
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

func TestJSONOutputParses(t *testing.T) {
	prefix := name(t, "json") + "/"
	l := jsonOf(t, "", "lock", prefix+"lock", "--ttl", "30s")
	if l["token"] == "" || l["outcome"] != "GRANT_OUTCOME_IMMEDIATE" {
		t.Fatalf("lock: %v", l)
	}
	ls := jsonOf(t, "", "ls", prefix)
	res := ls["resources"].([]any)
	if len(res) != 1 || res[0].(map[string]any)["kind"] != "lock" || res[0].(map[string]any)["holders"] != 1.0 {
		t.Fatalf("ls: %v", ls)
	}
	d := jsonOf(t, "", "describe", prefix+"lock")
	holders := d["holders"].([]any)
	if d["kind"] != "RESOURCE_KIND_LOCK" || holders[0].(map[string]any)["token"] != l["token"] {
		t.Fatalf("describe: %v", d)
	}
	refreshed := jsonOf(t, "", "refresh", prefix+"lock", "--token", l["token"].(string), "--ttl", "90s")
	if !strings.HasSuffix(refreshed["expires_in"].(string), "s") {
		t.Fatalf("refresh: %v", refreshed)
	}
	ok(t, "", "unlock", prefix+"lock", "--token", l["token"].(string))

	q := prefix + "q"
	put := jsonOf(t, "x\ny\n", "queue", "put", q)
	if len(put["item_ids"].([]any)) != 2 || put["size"] != 2.0 {
		t.Fatalf("put: %v", put)
	}
	got := jsonOf(t, "", "queue", "get", q, "--max", "5")
	items := got["items"].([]any)
	if len(items) != 2 || items[0].(map[string]any)["text"] != "x" {
		t.Fatalf("get: %v", got)
	}
	receipts := []string{"queue", "ack", q}
	for _, it := range items {
		receipts = append(receipts, it.(map[string]any)["receipt"].(string))
	}
	if ack := jsonOf(t, "", receipts...); ack["acked"] != 2.0 || ack["unfinished"] != "0" {
		t.Fatalf("ack: %v", ack)
	}
	s := jsonOf(t, "", "session", "open", "--ttl", "5s", "--label", "json")
	sd := jsonOf(t, "", "session", "describe", s["session_id"].(string))
	if sd["label"] != "json" || sd["ttl"] != "5s" {
		t.Fatalf("session describe: %v", sd)
	}
	ok(t, "", "session", "close", s["session_id"].(string))
	task := jsonOf(t, "", "task", "submit", prefix+"tasks", "p")
	if !strings.HasPrefix(task["task_id"].(string), prefix+"tasks#") {
		t.Fatalf("task submit: %v", task)
	}
	ok(t, "", "task", "cancel", task["task_id"].(string))
	tm := jsonOf(t, "", "timer", "after", prefix+"timer", "1h", "--set-event", prefix+"ev")
	if tm["due_in"] == nil {
		t.Fatalf("timer: %v", tm)
	}
	ok(t, "", "timer", "cancel", prefix+"timer")
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
	if r := runB(t, "", "sem", "acquire", n, "--capacity", "2", "--try", "--", "true"); r.code != 3 {
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
	time.Sleep(200 * time.Millisecond)
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
	var o map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &o); err != nil || r.code != 7 || o["error_code"] != 3.0 || o["error_message"] != "cannot do it" {
		t.Fatalf("await of the failed task: exit %d %q %v", r.code, r.stdout, err)
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
