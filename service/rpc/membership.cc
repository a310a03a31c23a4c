#include "service/rpc/membership.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "storage/raft_log.h"

namespace baton::rpc {
namespace {

v1::MembersResponse ToProto(const storage::raftwire::Reply& reply, uint64_t node_id) {
  std::vector<storage::raftwire::Member> members = reply.members;
  std::sort(members.begin(), members.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  v1::MembersResponse out;
  for (const auto& m : members) {
    v1::Member* pm = out.add_members();
    pm->set_id(m.id);
    pm->set_peer_address(m.peer_addr);
    pm->set_client_address(m.client_addr);
    pm->set_leader(m.id == reply.leader_id);
  }
  out.set_leader_id(reply.leader_id);
  out.set_answered_by(node_id);
  return out;
}

}  // namespace

Membership::Membership(storage::RaftLog* log, uint64_t node_id)
    : log_(log), node_id_(node_id), thread_([this] { Run(); }) {}

void Membership::Submit(ServerOps::MembersRequest request, absl::Time deadline,
                        ServerOps::MembersDone done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closed_) {
      jobs_.push_back(Job{std::move(request), deadline, std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  done(absl::UnavailableError("the server is shutting down"));
}

void Membership::Close() {
  std::deque<Job> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ && !thread_.joinable()) return;
    closed_ = true;
    left.swap(jobs_);
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
  for (Job& job : left) job.done(absl::UnavailableError("the server is shutting down"));
}

void Membership::Run() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return closed_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // closed
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job.done(Ask(job));
  }
}

absl::StatusOr<v1::MembersResponse> Membership::Ask(const Job& job) {
  absl::Duration timeout = job.deadline - absl::Now();
  if (timeout <= absl::ZeroDuration()) {
    return absl::DeadlineExceededError("the call's deadline passed before raft was asked");
  }
  absl::StatusOr<storage::raftwire::Reply> reply;
  bool list_after = false;  // the answer names no members: ask for them
  if (std::holds_alternative<v1::ListMembersRequest>(job.request)) {
    reply = log_->ListMembers(timeout);
  } else if (const auto* add = std::get_if<v1::AddMemberRequest>(&job.request)) {
    reply = log_->AddMember(storage::raftwire::Member{.id = add->id(),
                                                      .peer_addr = add->peer_address(),
                                                      .client_addr = add->client_address()},
                            timeout);
  } else if (const auto* remove = std::get_if<v1::RemoveMemberRequest>(&job.request)) {
    reply = log_->RemoveMember(remove->id(), timeout);
  } else {
    const auto& transfer = std::get<v1::TransferLeadershipRequest>(job.request);
    reply = log_->TransferLeadership(transfer.to(), timeout);
    list_after = true;
  }
  if (!reply.ok()) return reply.status();
  if (list_after) {
    // The new leader as this node learnt it, with the members it knows.
    uint64_t leader = reply->leader_id;
    timeout = std::max(job.deadline - absl::Now(), absl::Seconds(1));
    auto members = log_->ListMembers(timeout);
    if (!members.ok()) return members.status();
    reply = std::move(members);
    if (leader != 0) reply->leader_id = leader;
  }
  return ToProto(*reply, node_id_);
}

}  // namespace baton::rpc
