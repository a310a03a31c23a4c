// Membership: the Admin calls that ask raft about the cluster's members
// (ListMembers, AddMember, RemoveMember, TransferLeadership) on a cluster
// node. Raft's answers take a commit or an election, and RaftLog's calls
// block until then, so they run here, on a thread of their own, one at a
// time and in order (raft itself takes one membership change at a time).
//
// Threading: Submit from any thread; `done` runs on the membership thread
// (or on Close's caller, for requests still queued then). Close from a
// thread that is not the membership thread; it joins it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>

#include "service/rpc/server_ops.h"

namespace baton::storage {
class RaftLog;
}

namespace baton::rpc {

class Membership {
 public:
  // `log` must outlive Close.
  Membership(storage::RaftLog* log, uint64_t node_id);
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;
  ~Membership() { Close(); }

  // Queues `request`; its answer (or UNAVAILABLE once closed) goes to done.
  void Submit(ServerOps::MembersRequest request, absl::Time deadline, ServerOps::MembersDone done);

  // Finishes the request being asked (bounded by its deadline), answers
  // those still queued UNAVAILABLE, and joins the thread. Idempotent.
  void Close();

 private:
  struct Job {
    ServerOps::MembersRequest request;
    absl::Time deadline;
    ServerOps::MembersDone done;
  };

  void Run();
  absl::StatusOr<v1::MembersResponse> Ask(const Job& job);

  storage::RaftLog* const log_;
  const uint64_t node_id_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool closed_ = false;
  std::thread thread_;
};

}  // namespace baton::rpc
