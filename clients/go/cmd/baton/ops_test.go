package main

// Tests of the operator's commands against the real batond: version,
// server-info, snapshot save, health.

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	baton "github.com/baton/baton/clients/go"
	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
)

// requireAdminRPC skips the test if the server answers UNIMPLEMENTED to the
// Admin RPC method (a batond older than ServerInfo and SaveSnapshot); any
// other answer lets the test run and judge.
func requireAdminRPC(t *testing.T, method string) { requireAdminRPCAt(t, addr, method) }

func requireAdminRPCAt(t *testing.T, addr, method string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := baton.Dial(ctx, addr, suite.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	switch method {
	case batonv1.Admin_ServerInfo_FullMethodName:
		_, err = c.Raw().Admin.ServerInfo(ctx, &batonv1.ServerInfoRequest{})
	case batonv1.Admin_SaveSnapshot_FullMethodName:
		var s grpc.ServerStreamingClient[batonv1.SnapshotChunk]
		if s, err = c.Raw().Admin.SaveSnapshot(ctx, &batonv1.SaveSnapshotRequest{}); err == nil {
			_, err = s.Recv()
		}
	default:
		t.Fatalf("no probe for %s", method)
	}
	if status.Code(err) == codes.Unimplemented {
		t.Skipf("this batond answers %s with UNIMPLEMENTED (built before the server implemented it): %v", method, err)
	}
}

// The probe skips on UNIMPLEMENTED only: against a gRPC server without the
// Admin service it skips, against batond it lets the test run.
func TestAdminProbeSkipsOnlyOnUnimplemented(t *testing.T) {
	other := startHealthServer(t, healthpb.HealthCheckResponse_SERVING)
	for _, m := range []string{batonv1.Admin_ServerInfo_FullMethodName, batonv1.Admin_SaveSnapshot_FullMethodName} {
		var skipped, ran bool
		t.Run("skips on UNIMPLEMENTED "+m, func(t *testing.T) {
			defer func() { skipped = t.Skipped() }()
			requireAdminRPCAt(t, other, m)
			ran = true
		})
		if !skipped || ran {
			t.Errorf("%s against a server without it: skipped %v", m, skipped)
		}
	}
}

// startHealthServer starts a gRPC server with only a health service, which
// answers st for the whole server; stopped when the test ends.
func startHealthServer(t *testing.T, st healthpb.HealthCheckResponse_ServingStatus) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Under BATON_TEST_SECURE=1 it serves TLS with the suite server's
	// certificate, so that the commands reach it as they reach batond (the
	// token they send is ignored).
	var opts []grpc.ServerOption
	if suite.Creds != nil {
		creds, err := credentials.NewServerTLSFromFile(suite.Creds.Certs.ServerCert, suite.Creds.Certs.ServerKey)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, grpc.Creds(creds))
	}
	srv := grpc.NewServer(opts...)
	hs := health.NewServer()
	hs.SetServingStatus("", st)
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

func TestVersionPrintsTheClientsAndTheServersVersions(t *testing.T) {
	requireAdminRPC(t, batonv1.Admin_ServerInfo_FullMethodName)
	out := ok(t, "", "version")
	if !strings.Contains(out, "client: baton "+testVersion+" ") || !regexp.MustCompile(`(?m)^server: batond \S+ \(commit `).MatchString(out) {
		t.Fatalf("version printed %q", out)
	}
	var v struct {
		Client struct {
			Version   string `json:"version"`
			GoVersion string `json:"go_version"`
		} `json:"client"`
		Server json.RawMessage `json:"server"`
	}
	if err := json.Unmarshal([]byte(ok(t, "", "version", "--json")), &v); err != nil {
		t.Fatal(err)
	}
	info := &batonv1.ServerInfoResponse{}
	if err := protojson.Unmarshal(v.Server, info); err != nil || v.Client.Version != testVersion ||
		!strings.HasPrefix(v.Client.GoVersion, "go") || info.GetVersion() == "" || info.GetShards() == 0 {
		t.Fatalf("version --json: %+v, server %s: %v", v, v.Server, err)
	}
	if out := ok(t, "", "--version"); out != "baton "+testVersion+"\n" {
		t.Fatalf("--version printed %q", out)
	}
}

func TestVersionWithoutAServerPrintsTheClientsAndExits6(t *testing.T) {
	closed := closedAddr(t)
	r := runB(t, "", "--addr", closed, "--dial-timeout", "300ms", "version")
	if r.code != 6 || !strings.Contains(r.stdout, "client: baton "+testVersion) || strings.Contains(r.stdout, "server:") ||
		!strings.Contains(r.stderr, "unavailable") {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runB(t, "", "--addr", closed, "--dial-timeout", "300ms", "--json", "version")
	var v map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 6 || v["server"] != nil ||
		v["client"].(map[string]any)["version"] != testVersion {
		t.Fatalf("--json: exit %d, stdout %q (%v)", r.code, r.stdout, err)
	}
}

func TestServerInfoShowsTheConfigurationSortedByName(t *testing.T) {
	requireAdminRPC(t, batonv1.Admin_ServerInfo_FullMethodName)
	info := replyOf(t, &batonv1.ServerInfoResponse{}, "", "server-info")
	if info.GetDurability() != "local" || info.GetDataDir() == "" || len(info.GetConfig()) == 0 || info.GetUptime() == nil {
		t.Fatalf("server-info --json: %v", info)
	}
	out := ok(t, "", "status") // the alias
	head, config, found := strings.Cut(out, "\nconfig:\n")
	if !found || !strings.Contains(head, "version:") || !strings.Contains(head, "durability:") ||
		!strings.Contains(head, info.GetDataDir()) {
		t.Fatalf("server-info printed %q", out)
	}
	var keys []string
	for _, line := range strings.Split(strings.TrimRight(config, "\n"), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(line, "  ") {
			t.Fatalf("config line %q in %q", line, out)
		}
		keys = append(keys, f[0])
		if want := info.GetConfig()[f[0]]; want != "" && (len(f) != 2 || f[1] != want) {
			t.Fatalf("config line %q, want %s %s", line, f[0], want)
		}
	}
	if len(keys) != len(info.GetConfig()) || !sort.StringsAreSorted(keys) {
		t.Fatalf("config keys %v, want every one of %v in order", keys, info.GetConfig())
	}
}

// A snapshot saved by the CLI is a whole snapshot: a server restored from it
// has the state that was saved.
func TestSnapshotSaveWritesAFileTheServerRestoresFrom(t *testing.T) {
	requireAdminRPC(t, batonv1.Admin_SaveSnapshot_FullMethodName)
	n := name(t, "kept")
	ok(t, "", "queue", "put", n, "saved item")
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.snap")
	out := ok(t, "", "snapshot", "save", file)
	m := regexp.MustCompile(`^saved the snapshot at log index (\d+), (\d+) bytes, to (.*)\n$`).FindStringSubmatch(out)
	if m == nil || m[3] != file {
		t.Fatalf("snapshot save printed %q", out)
	}
	st, err := os.Stat(file)
	if err != nil || strconv.FormatInt(st.Size(), 10) != m[2] || st.Mode().Perm() != 0o600 {
		t.Fatalf("file %v (%v), printed %q", st, err, out)
	}
	if _, err := os.Stat(file + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("%s.tmp left behind: %v", file, err)
	}
	// --json: the first chunk without data; '-': the file on stdout.
	first := replyOf(t, &batonv1.SnapshotChunk{}, "", "snapshot", "save", filepath.Join(dir, "again.snap"))
	if first.GetTotalBytes() == 0 || first.GetIndex() == 0 || len(first.GetData()) != 0 {
		t.Fatalf("snapshot save --json: %v", first)
	}
	r := runB(t, "", "snapshot", "save", "-")
	if r.code != 0 || len(r.stdout) == 0 || !strings.Contains(r.stderr, "bytes, to stdout") ||
		!strings.Contains(r.stderr, strconv.Itoa(len(r.stdout))+" bytes") {
		t.Fatalf("snapshot save -: exit %d, %d bytes, stderr %q", r.code, len(r.stdout), r.stderr)
	}

	restored, err := suite.Another("--restore", file, "--data_dir", filepath.Join(dir, "restored"))
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Stop()
	if got := ok(t, "", "--addr", restored.Addr, "queue", "get", n, "--ack", "--try"); got != "saved item\n" {
		t.Fatalf("restored server has %q", got)
	}
}

// A server that keeps no snapshots says FAILED_PRECONDITION: exit 5, and no
// file is left.
func TestSnapshotSaveFromAMemoryOnlyServerExits5AndWritesNothing(t *testing.T) {
	requireAdminRPC(t, batonv1.Admin_SaveSnapshot_FullMethodName)
	mem, err := suite.Another("--durability=none")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Stop()
	file := filepath.Join(t.TempDir(), "backup.snap")
	r := runB(t, "", "--addr", mem.Addr, "snapshot", "save", file)
	if r.code != 5 || !strings.Contains(r.stderr, "Admin.SaveSnapshot") || !strings.Contains(r.stderr, "failed precondition") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	for _, f := range []string{file, file + ".tmp"} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Fatalf("%s exists after a failed save: %v", f, err)
		}
	}
	if r := runB(t, "", "snapshot", "save", filepath.Join(t.TempDir(), "no", "such", "dir", "f")); r.code != 1 ||
		!strings.Contains(r.stderr, "cannot write the snapshot") {
		t.Fatalf("unwritable file: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestHealthExits0WhenServingAnd1OrElse6(t *testing.T) {
	if out := ok(t, "", "health"); out != "SERVING\n" {
		t.Fatalf("health printed %q", out)
	}
	if h := replyOf(t, &healthpb.HealthCheckResponse{}, "", "health"); h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health --json: %v", h)
	}
	if r := runB(t, "", "health", "--service", "no.such.Service"); r.code != 1 || r.stdout != "SERVICE_UNKNOWN\n" {
		t.Fatalf("unknown service: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if r := runB(t, "", "--addr", closedAddr(t), "--dial-timeout", "300ms", "health"); r.code != 6 || r.stdout != "" {
		t.Fatalf("no server: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	// A server that says NOT_SERVING (batond does while it shuts down): a
	// gRPC health service of the test's own.
	notServing := startHealthServer(t, healthpb.HealthCheckResponse_NOT_SERVING)
	if r := runB(t, "", "--addr", notServing, "health"); r.code != 1 || r.stdout != "NOT_SERVING\n" {
		t.Fatalf("not serving: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
}

// On a single node the membership commands say so: exit 5, naming the call,
// and a member id must be a positive integer (exit 2, nothing sent).
func TestMembersOnASingleNodeExit5(t *testing.T) {
	for _, args := range [][]string{{"members", "list"}, {"members", "add", "4", "127.0.0.1:1", "127.0.0.1:2"},
		{"members", "remove", "2"}, {"members", "transfer"}} {
		r := runB(t, "", args...)
		if r.code != 5 || !strings.Contains(r.stderr, "single node") || !strings.Contains(r.stderr, "Admin.") {
			t.Fatalf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	for _, args := range [][]string{{"members", "remove", "0"}, {"members", "transfer", "x"}, {"members", "add", "4", "a"}} {
		if r := runB(t, "", args...); r.code != 2 {
			t.Fatalf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
}
