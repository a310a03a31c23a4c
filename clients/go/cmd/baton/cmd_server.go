package main

// The operator's commands: version, server-info, snapshot save, health; and
// the completion of resource names.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	baton "github.com/baton/baton/clients/go"
	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
)

// serverInfo asks the server what it is (Admin/ServerInfo).
func (e *env) serverInfo() (*batonv1.ServerInfoResponse, error) {
	c, err := e.dial()
	if err != nil {
		return nil, err
	}
	ctx, cancel := e.callCtx()
	defer cancel()
	info, err := c.Raw().Admin.ServerInfo(ctx, &batonv1.ServerInfoRequest{})
	return info, wrapRPC(ctx, "Admin.ServerInfo", "", err)
}

func versionCmd(e *env) *cobra.Command {
	return leaf("version", "Print the versions of baton and of the server",
		`Prints baton's version (set at build time with -ldflags "-X main.version=...";
"dev" otherwise), its Go module version and Go toolchain, and the server's version,
commit, build, role, shards, durability and uptime (Admin/ServerInfo). If the server
cannot be reached, baton still prints its own version, then exits 6.

--json prints {"client":{"version","module_version","go_version"},"server":{...}}, where
"server" is the baton.v1.ServerInfoResponse, absent when the server did not answer.`+
			exits("0 both printed", "6 the server is unreachable (the client's version is printed)"),
		`  baton version
  baton --addr db1:7411 version --json | jq -r .server.version`,
		0, 0, func(cmd *cobra.Command, pos []string) error {
			v, module, goVersion := clientVersion()
			info, err := e.serverInfo()
			if e.g.json {
				out := struct {
					Client struct {
						Version       string `json:"version"`
						ModuleVersion string `json:"module_version"`
						GoVersion     string `json:"go_version"`
					} `json:"client"`
					Server json.RawMessage `json:"server,omitempty"`
				}{}
				out.Client.Version, out.Client.ModuleVersion, out.Client.GoVersion = v, module, goVersion
				if err == nil {
					b, merr := marshal(info)
					if merr != nil {
						return merr
					}
					out.Server = b
				}
				b, merr := json.Marshal(out)
				if merr != nil {
					return merr
				}
				fmt.Fprintf(e.stdout, "%s\n", b)
				return err
			}
			built := goVersion
			if module != "" && module != "(devel)" {
				built = "module " + module + ", " + goVersion
			}
			fmt.Fprintf(e.stdout, "client: baton %s (%s)\n", v, built)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "server: batond %s (commit %s, %s), %s, %d shards, durability %s, up %v, at %s\n",
				info.GetVersion(), info.GetCommit(), info.GetBuild(), info.GetRole(), info.GetShards(),
				info.GetDurability(), info.GetUptime().AsDuration().Round(time.Second), e.g.addr)
			return nil
		})
}

func serverInfoCmd(e *env) *cobra.Command {
	cmd := leaf("server-info", "Show what the server is: version, build, configuration in effect, uptime, log indexes",
		`Shows the server's version, commit and build, when it started and its uptime, its
role, shards and durability, its data directory, the log index applied last and the
one its newest snapshot covers, and every server flag in effect (config, sorted by
name) (Admin/ServerInfo).

--json prints the baton.v1.ServerInfoResponse.`+exits("0 shown"),
		`  baton server-info
  baton status --json | jq -r .config.snapshot_entries`,
		0, 0, func(cmd *cobra.Command, pos []string) error {
			info, err := e.serverInfo()
			if err != nil {
				return err
			}
			if e.g.json {
				e.printMsg(info)
				return nil
			}
			fmt.Fprint(e.stdout, serverInfoText(info))
			return nil
		})
	cmd.Aliases = []string{"status"}
	return cmd
}

// serverInfoText renders Admin/ServerInfo for a person.
func serverInfoText(info *batonv1.ServerInfoResponse) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	line := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	line("version", info.GetVersion())
	line("commit", info.GetCommit())
	line("build", info.GetBuild())
	started := "-"
	if info.GetStartedAt() != nil {
		started = info.GetStartedAt().AsTime().Local().Format(time.RFC3339)
	}
	line("started at", started)
	line("uptime", d(info.GetUptime()))
	line("role", info.GetRole())
	line("shards", info.GetShards())
	line("durability", info.GetDurability())
	dir := info.GetDataDir()
	if dir == "" {
		dir = "-"
	}
	line("data dir", dir)
	line("applied index", info.GetAppliedIndex())
	line("snapshot index", info.GetSnapshotIndex())
	_ = tw.Flush()
	keys := make([]string, 0, len(info.GetConfig()))
	for k := range info.GetConfig() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(&b, "config:\n")
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, k := range keys {
		v := info.GetConfig()[k]
		if v == "" {
			v = `""`
		}
		fmt.Fprintf(tw, "  %s\t%s\n", k, v)
	}
	_ = tw.Flush()
	return b.String()
}

func snapshotCmd(e *env) *cobra.Command {
	return group("snapshot", "Back up the server's state ('snapshot save FILE')",
		`'baton snapshot save FILE' writes a consistent snapshot of the server's whole state to
FILE. There is no 'snapshot restore' command: restoring is done by the server, on a
fresh data directory, with the server stopped:

  batond --restore FILE --data_dir DIR

which starts a server from the snapshot (see batond --help).`,
		`  baton snapshot save backup-$(date +%F).snap
  batond --restore backup-2025-12-06.snap --data_dir /var/lib/baton-restored`,
		snapshotSaveCmd(e))
}

func snapshotSaveCmd(e *env) *cobra.Command {
	return leaf("save FILE", "Save a consistent snapshot of the server's state to FILE ('-': stdout)",
		`Asks the server to cut a snapshot of every shard at one log index
(Admin/SaveSnapshot) and writes the file it streams to FILE.tmp, fsyncs it, and renames
it to FILE, so that FILE is either the whole snapshot or untouched. Prints the log index
the snapshot covers and its size. With '-' as FILE the snapshot goes to stdout and
the summary to stderr. FILE is created readable by its owner only (0600): it holds
every resource's state. --timeout bounds the whole transfer (default: none).
Restore with 'batond --restore FILE --data_dir DIR' (see 'baton help snapshot').

--json prints the stream's first baton.v1.SnapshotChunk without its data:
{"index": "...", "total_bytes": "...", "data": ""} (nothing on stdout with '-').`+
			exits("0 saved", "5 the server keeps no snapshots (--durability=none)",
				"3 not done within --timeout", "1 the snapshot could not be cut, read or written (the message says why)", "130 interrupted"),
		`  baton snapshot save backup.snap
  baton snapshot save - | gzip > backup.snap.gz`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			return e.saveSnapshot(pos[0])
		})
}

// saveSnapshot streams Admin/SaveSnapshot into path (or stdout for "-").
func (e *env) saveSnapshot(path string) error {
	c, err := e.dial()
	if err != nil {
		return err
	}
	ctx, cancel := e.waitCtx()
	defer cancel()
	stream, err := c.Raw().Admin.SaveSnapshot(ctx, &batonv1.SaveSnapshotRequest{})
	if err != nil {
		return wrapRPC(ctx, "Admin.SaveSnapshot", "", err)
	}
	var out io.Writer = e.stdout
	var f *os.File
	tmp := path + ".tmp"
	if path != "-" {
		f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("cannot write the snapshot: %w", err)
		}
		defer func() {
			if f != nil { // not renamed: leave nothing behind
				f.Close()
				os.Remove(tmp)
			}
		}()
		out = f
	}
	var first *batonv1.SnapshotChunk
	var written uint64
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return wrapRPC(ctx, "Admin.SaveSnapshot", "", err)
		}
		if first == nil {
			first = &batonv1.SnapshotChunk{Index: chunk.GetIndex(), TotalBytes: chunk.GetTotalBytes()}
		}
		if _, err := out.Write(chunk.GetData()); err != nil {
			return fmt.Errorf("cannot write the snapshot: %w", err)
		}
		written += uint64(len(chunk.GetData()))
	}
	if first == nil {
		return errors.New("the server sent no snapshot")
	}
	if first.GetTotalBytes() != 0 && written != first.GetTotalBytes() {
		return fmt.Errorf("the snapshot stream ended after %d of %d bytes", written, first.GetTotalBytes())
	}
	if f != nil {
		// Durable before it has its name: a crash leaves FILE.tmp, never a
		// partial FILE.
		if err := f.Sync(); err != nil {
			return fmt.Errorf("cannot write the snapshot: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("cannot write the snapshot: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("cannot write the snapshot: %w", err)
		}
		f = nil
		if dir, err := os.Open(filepath.Dir(path)); err == nil {
			_ = dir.Sync() // the rename itself
			dir.Close()
		}
	}
	to := path
	if path == "-" {
		to = "stdout"
	}
	summary := fmt.Sprintf("saved the snapshot at log index %d, %d bytes, to %s\n", first.GetIndex(), written, to)
	switch {
	case path == "-":
		fmt.Fprint(e.stderr, "baton: "+summary)
	case e.g.json:
		e.printMsg(first)
	default:
		fmt.Fprint(e.stdout, summary)
	}
	return nil
}

func healthCmd(e *env) *cobra.Command {
	var service string
	cmd := leaf("health [--service NAME]", "Check the server's health: print SERVING or NOT_SERVING",
		`Asks the server's gRPC health service (grpc.health.v1.Health/Check) about --service
(default "": the whole server) and prints the status: SERVING, NOT_SERVING (e.g.
shutting down), or SERVICE_UNKNOWN for a service the server does not know. Gives up
after --dial-timeout (default 2s), or --timeout if given, and exits 6. Meant for
container health checks:

  HEALTHCHECK CMD baton --addr 127.0.0.1:7411 health

--json prints the grpc.health.v1.HealthCheckResponse.`+
			exits("0 SERVING", "1 NOT_SERVING, SERVICE_UNKNOWN or any other answer",
				"6 the server is unreachable or did not answer in time"),
		`  baton health
  baton --addr db1:7411 --dial-timeout 1s health --service baton.v1.Locks`,
		0, 0, func(cmd *cobra.Command, pos []string) error {
			c, err := e.dialWith(baton.WithoutConnectCheck())
			if err != nil {
				return err
			}
			d := e.g.dialTimeout
			if e.g.timeout > 0 {
				d = e.g.timeout
			}
			ctx, cancel := context.WithTimeout(e.ctx, d)
			defer cancel()
			resp, err := c.Raw().Health.Check(ctx, &healthpb.HealthCheckRequest{Service: service}, grpc.WaitForReady(true))
			switch {
			case status.Code(err) == codes.NotFound:
				resp = &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVICE_UNKNOWN}
			case err != nil && e.ctx.Err() == nil && ctx.Err() != nil:
				// WaitForReady hides why behind the deadline; the message names
				// the last connection error (e.g. a certificate that did not verify).
				return &exitError{exitUnavailable, fmt.Sprintf("no answer from %s within %v (unavailable): %s",
					e.g.addr, d, status.Convert(err).Message())}
			case err != nil:
				return wrapRPC(ctx, "Health.Check", service, err)
			}
			if e.g.json {
				e.printMsg(resp)
			} else {
				fmt.Fprintln(e.stdout, resp.GetStatus())
			}
			if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				return &exitError{exitFailure, ""}
			}
			return nil
		})
	cmd.Flags().StringVar(&service, "service", "", `the service to check ("": the whole server)`)
	return cmd
}

// completeNames completes the first argument with the names of live
// resources of kind (KindAny: every kind), asking the server; nothing if it
// cannot be reached quickly.
func (e *env) completeNames(kind baton.Kind) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := e.dial()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(e.ctx, e.g.dialTimeout)
		defer cancel()
		rs, err := c.List(ctx, toComplete, kind)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		names := make([]string, 0, len(rs))
		for _, r := range rs {
			names = append(names, r.Name)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}
