// ServerOps: what the Admin service asks of the server as a whole, rather
// than of a shard: its description (Admin/ServerInfo), a fresh snapshot
// file to stream (Admin/SaveSnapshot), and the cluster's membership
// (Admin/ListMembers, AddMember, RemoveMember, TransferLeadership).
// Implemented by Server.
//
// Threading: any thread. CutSnapshot's `done` runs on the snapshot thread,
// Members' on the server's membership thread (raft's answers take a commit
// or an election: no loop may block on them); either runs at once, on the
// calling thread, with an error it knows without asking.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <variant>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "baton/v1/admin.pb.h"

namespace baton::rpc {

class ServerOps {
 public:
  // A snapshot file, opened before any later snapshot could delete it.
  struct SnapshotFile {
    uint64_t index = 0;
    uint64_t bytes = 0;
    std::shared_ptr<std::FILE> file;
  };
  using SnapshotDone = std::function<void(absl::StatusOr<SnapshotFile>)>;

  virtual ~ServerOps() = default;
  virtual void Describe(v1::ServerInfoResponse* out) const = 0;
  // Cuts a snapshot of every shard at one log index and opens its file.
  // Errors: FAILED_PRECONDITION in memory, UNAVAILABLE when shutting down,
  // the store's error if it could not be written, INTERNAL if it cannot be
  // opened.
  virtual void CutSnapshot(SnapshotDone done) = 0;

  // One membership request: exactly one of the Admin requests below.
  using MembersRequest = std::variant<v1::ListMembersRequest, v1::AddMemberRequest,
                                      v1::RemoveMemberRequest, v1::TransferLeadershipRequest>;
  using MembersDone = std::function<void(absl::StatusOr<v1::MembersResponse>)>;
  // Asks raft, waiting at most until `deadline`. Errors: as Admin's
  // membership calls say (admin.proto).
  virtual void Members(MembersRequest request, absl::Time deadline, MembersDone done) = 0;
};

}  // namespace baton::rpc
