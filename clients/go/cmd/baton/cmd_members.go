package main

// The cluster's members: list, add, remove, and moving the lead
// (Admin/ListMembers, AddMember, RemoveMember, TransferLeadership).

import (
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	batonv1 "github.com/baton/baton/clients/go/gen/batonv1"
)

func membersCmd(e *env) *cobra.Command {
	return group("members", "A cluster's members: list, add, remove, transfer the lead",
		`The members of a cluster as raft has them (docs/cluster.md). Any node answers: a
follower passes the call to the leader. Changing the membership needs an admin
principal. On a single node (batond without --peers) every subcommand exits 5.

Adding a node is two steps: 'baton members add' on the cluster, then starting the
new batond with --join, the same --node_id, and --peers naming every member (itself
included). Replacing a dead node: 'members remove' it, then add its replacement
with a new id and an empty data directory.`,
		`  baton --addr n1:7411,n2:7411,n3:7411 members list
  baton members add 4 n4:7420 n4:7411
  baton members remove 2
  baton members transfer 3`,
		membersListCmd(e), membersAddCmd(e), membersRemoveCmd(e), membersTransferCmd(e))
}

func membersListCmd(e *env) *cobra.Command {
	cmd := leaf("list", "List the members: id, peer and client addresses, which one leads",
		`Lists every member in id order: its raft id, the address of its raft peer listener,
the address of its gRPC API, and a '*' on the leader; then which node answered
(Admin/ListMembers).

--json prints the baton.v1.MembersResponse.`+
			exits("0 listed", "5 a single node: no members", "6 unreachable, or no leader could answer"),
		`  baton members list
  baton members list --json | jq -r '.members[] | select(.leader) | .client_address'`,
		0, 0, func(cmd *cobra.Command, pos []string) error {
			return e.members("Admin.ListMembers", "", func(c batonv1.AdminClient) (*batonv1.MembersResponse, error) {
				ctx, cancel := e.callCtx()
				defer cancel()
				return c.ListMembers(ctx, &batonv1.ListMembersRequest{})
			})
		})
	cmd.Aliases = []string{"ls"}
	return cmd
}

func membersAddCmd(e *env) *cobra.Command {
	return leaf("add ID PEER_ADDRESS CLIENT_ADDRESS", "Add a member (then start it with --join)",
		`Adds node ID to the cluster, whose raft peer listener is at PEER_ADDRESS (its batond
--peer_listen) and whose gRPC API is at CLIENT_ADDRESS (its --listen), and returns once
the change is committed (Admin/AddMember). Then start that batond with --join,
--node_id ID and --peers naming every member: it catches up from the leader. Until it
does, the cluster counts it in its majority: add one node at a time.

--json prints the baton.v1.MembersResponse.`+
			exits("0 added", "2 bad arguments (id 0, an address missing)",
				"5 the id is a member already, another change is in progress, or a single node",
				"3 not committed within --timeout (outcome unknown: list to see)"),
		`  baton members add 4 10.0.0.4:7420 10.0.0.4:7411`,
		3, 3, func(cmd *cobra.Command, pos []string) error {
			id, err := memberID(pos[0])
			if err != nil {
				return err
			}
			return e.members("Admin.AddMember", pos[0], func(c batonv1.AdminClient) (*batonv1.MembersResponse, error) {
				ctx, cancel := e.callCtx()
				defer cancel()
				return c.AddMember(ctx, &batonv1.AddMemberRequest{Id: id, PeerAddress: pos[1], ClientAddress: pos[2]})
			})
		})
}

func membersRemoveCmd(e *env) *cobra.Command {
	return leaf("remove ID", "Remove a member (alive or dead)",
		`Removes node ID from the cluster and returns once the change is committed
(Admin/RemoveMember). A removed node that still runs stops taking part; stop it and
delete its data directory before it could join again. Removing the leader is
allowed: it steps down and the others elect a leader.

--json prints the baton.v1.MembersResponse.`+
			exits("0 removed", "4 not a member",
				"5 the last member, another change in progress, or a single node",
				"3 not committed within --timeout (outcome unknown: list to see)"),
		`  baton members remove 2`,
		1, 1, func(cmd *cobra.Command, pos []string) error {
			id, err := memberID(pos[0])
			if err != nil {
				return err
			}
			return e.members("Admin.RemoveMember", pos[0], func(c batonv1.AdminClient) (*batonv1.MembersResponse, error) {
				ctx, cancel := e.callCtx()
				defer cancel()
				return c.RemoveMember(ctx, &batonv1.RemoveMemberRequest{Id: id})
			})
		})
}

func membersTransferCmd(e *env) *cobra.Command {
	return leaf("transfer [ID]", "Hand the lead to member ID (default: the most caught-up follower)",
		`Asks the leader to hand the lead to member ID, or without ID to the follower with the
most of the log, and returns once the new leader leads (Admin/TransferLeadership):
before maintenance of the leader's machine, so that clients see a handover of a few
milliseconds rather than an election. (A leader stopped with SIGTERM does this
itself.)

--json prints the baton.v1.MembersResponse.`+
			exits("0 moved", "4 not a member", "5 a transfer is under way, or a single node",
				"3 the target did not take over in time (it may be down or behind)"),
		`  baton members transfer
  baton members transfer 3`,
		0, 1, func(cmd *cobra.Command, pos []string) error {
			var to uint64
			if len(pos) == 1 {
				var err error
				if to, err = memberID(pos[0]); err != nil {
					return err
				}
			}
			return e.members("Admin.TransferLeadership", "", func(c batonv1.AdminClient) (*batonv1.MembersResponse, error) {
				ctx, cancel := e.callCtx()
				defer cancel()
				return c.TransferLeadership(ctx, &batonv1.TransferLeadershipRequest{To: to})
			})
		})
}

func memberID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, usageErr("member id %q: want a positive integer", s)
	}
	return id, nil
}

// members makes one membership call and prints the membership it returns.
func (e *env) members(op, name string, call func(batonv1.AdminClient) (*batonv1.MembersResponse, error)) error {
	c, err := e.dial()
	if err != nil {
		return err
	}
	resp, err := call(c.Raw().Admin)
	if err != nil {
		return wrapRPC(e.ctx, op, name, err)
	}
	if e.g.json {
		e.printMsg(resp)
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID\tPEER\tCLIENT\tLEADER\n")
	for _, m := range resp.GetMembers() {
		lead := ""
		if m.GetLeader() {
			lead = "*"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", m.GetId(), m.GetPeerAddress(), m.GetClientAddress(), lead)
	}
	_ = tw.Flush()
	leader := "none known"
	if resp.GetLeaderId() != 0 {
		leader = strconv.FormatUint(resp.GetLeaderId(), 10)
	}
	fmt.Fprintf(e.stdout, "leader: %s (answered by node %d)\n", leader, resp.GetAnsweredBy())
	return nil
}
