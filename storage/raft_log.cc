#include "storage/raft_log.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace baton::storage {
namespace {

// The fd baton-raftd finds its socket on (--socket-fd).
constexpr int kChildFd = 3;

absl::Status Errno(const char* what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) {
    switch (WEXITSTATUS(status)) {
      case 1:
        return "exited with a fatal error (status 1)";
      case 2:
        return "exited: bad flags (status 2)";
      case 3:
        return "exited after its socket closed (status 3)";
      default:
        return absl::StrCat("exited with status ", WEXITSTATUS(status));
    }
  }
  if (WIFSIGNALED(status)) return absl::StrCat("was killed by signal ", WTERMSIG(status));
  return absl::StrCat("ended (wait status ", status, ")");
}

}  // namespace

RaftLog::RaftLog(Options options, Events events)
    : options_(std::move(options)), events_(std::move(events)) {}

RaftLog::~RaftLog() { Close(); }

absl::Status RaftLog::Spawn() {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return Errno("socketpair");
  fd_ = sv[0];
  int child = sv[1];
  // dup2 onto the same number would keep FD_CLOEXEC: move it out of the way.
  if (child == kChildFd) {
    child = fcntl(sv[1], F_DUPFD_CLOEXEC, kChildFd + 1);
    close(sv[1]);
    if (child < 0) return Errno("fcntl(F_DUPFD_CLOEXEC)");
  }
  std::vector<std::string> args = {options_.raftd_path,
                                   "--id",
                                   absl::StrCat(options_.node_id),
                                   "--data-dir",
                                   options_.data_dir,
                                   "--socket-fd",
                                   absl::StrCat(kChildFd),
                                   "--peer-listen",
                                   options_.peer_listen,
                                   "--tick-ms",
                                   absl::StrCat(options_.tick_ms),
                                   "--election-ticks",
                                   absl::StrCat(options_.election_ticks)};
  if (!options_.initial_cluster.empty()) {
    args.push_back("--initial-cluster");
    args.push_back(options_.initial_cluster);
  }
  if (options_.join) args.push_back("--join");
  for (const std::string& a : options_.extra_args) args.push_back(a);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, child, kChildFd);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, options_.raftd_path.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(child);
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("cannot start ", options_.raftd_path, ": ", std::strerror(rc)));
  }
  pid_ = pid;
  return absl::OkStatus();
}

absl::Status RaftLog::Send(const std::string& frame) {
  std::lock_guard<std::mutex> lock(send_mu_);
  size_t done = 0;
  while (done < frame.size()) {
    ssize_t n = send(fd_, frame.data() + done, frame.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::UnavailableError("baton-raftd's socket is closed");
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RaftLog::ReadFrame(absl::Time deadline) {
  auto read_exact = [&](char* p, size_t len, bool at_start) -> absl::Status {
    size_t done = 0;
    while (done < len) {
      if (deadline != absl::InfiniteFuture()) {
        int ms = static_cast<int>(
            std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
        pollfd pfd{fd_, POLLIN, 0};
        int r = poll(&pfd, 1, ms);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return absl::DeadlineExceededError("baton-raftd did not answer in time");
      }
      ssize_t n = recv(fd_, p + done, len - done, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 && done == 0 && at_start) return absl::NotFoundError("end of stream");
      if (n <= 0) return absl::UnavailableError("baton-raftd's socket closed in mid-frame");
      done += static_cast<size_t>(n);
    }
    return absl::OkStatus();
  };
  unsigned char len_bytes[4];
  if (absl::Status s = read_exact(reinterpret_cast<char*>(len_bytes), 4, true); !s.ok()) return s;
  uint32_t len = len_bytes[0] | (len_bytes[1] << 8) | (len_bytes[2] << 16) |
                 (static_cast<uint32_t>(len_bytes[3]) << 24);
  if (len == 0 || len > raftwire::kMaxFrame) {
    return absl::InvalidArgumentError(absl::StrCat("baton-raftd sent a frame of ", len,
                                                   " bytes (at most ", raftwire::kMaxFrame, ")"));
  }
  std::string body(len, '\0');
  if (absl::Status s = read_exact(body.data(), len, false); !s.ok()) return s;
  return body;
}

absl::StatusOr<OpenResult> RaftLog::Open(uint64_t after_index, const ReplayFn& replay,
                                         LogCallbacks callbacks) {
  callbacks_ = std::move(callbacks);
  if (absl::Status s = Spawn(); !s.ok()) return s;
  auto fail = [&](absl::Status s) -> absl::Status {
    std::string how = Reap(absl::Seconds(2));
    return absl::Status(s.code(), absl::StrCat(s.message(), " (baton-raftd ", how, ")"));
  };
  if (absl::Status s = Send(raftwire::Encode(raftwire::Hello{after_index})); !s.ok()) {
    return fail(s);
  }
  absl::Time deadline = absl::Now() + options_.open_timeout;
  OpenResult result;
  result.last_index = after_index;
  for (;;) {
    auto body = ReadFrame(deadline);
    if (!body.ok()) {
      if (absl::IsNotFound(body.status())) {
        return fail(absl::UnavailableError("baton-raftd closed its socket before READY"));
      }
      return fail(body.status());
    }
    auto m = raftwire::Decode(*body);
    if (!m.ok()) return fail(m.status());
    if (auto* c = std::get_if<raftwire::Committed>(&*m)) {
      if (absl::Status s = replay(c->index, c->data); !s.ok()) return fail(s);
      result.last_index = c->index;
    } else if (auto* snap = std::get_if<raftwire::InstallSnapshot>(&*m)) {
      if (!events_.install_snapshot) {
        return fail(absl::FailedPreconditionError("baton-raftd sent a snapshot nobody installs"));
      }
      if (absl::Status s = events_.install_snapshot(snap->index, snap->data); !s.ok()) {
        return fail(s);
      }
      result.last_index = snap->index;
    } else if (auto* ready = std::get_if<raftwire::Ready>(&*m)) {
      result.last_index = std::max(result.last_index, ready->last_committed);
      result.notes.push_back(absl::StrCat("raft node ", ready->node_id, ": ", ready->members.size(),
                                          " members, committed through ", ready->last_committed));
      break;
    } else if (auto* f = std::get_if<raftwire::Fatal>(&*m)) {
      return fail(absl::UnavailableError(absl::StrCat("baton-raftd: ", f->message)));
    } else {
      Handle(*m);  // leadership, membership ... as after Open
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
  }
  reader_ = std::thread([this] { ReaderMain(); });
  return result;
}

void RaftLog::ReaderMain() {
  for (;;) {
    auto body = ReadFrame(absl::InfiniteFuture());
    if (!body.ok()) {
      if (absl::IsNotFound(body.status())) break;
      Die(body.status());
      break;
    }
    auto m = raftwire::Decode(*body);
    if (!m.ok()) {
      Die(m.status());
      break;
    }
    Handle(*m);
  }
  bool closing;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing = !open_;
  }
  if (!closing) {
    std::string how = Reap(absl::Seconds(1));
    Die(absl::UnavailableError(absl::StrCat("baton-raftd ", how)));
  }
}

void RaftLog::Handle(raftwire::Incoming& m) {
  if (auto* c = std::get_if<raftwire::Committed>(&m)) {
    if (c->cookie != 0) {
      std::lock_guard<std::mutex> lock(mu_);
      // Not ours (any more): it was rejected as outcome unknown, then
      // committed after all. The server applies it; nobody waits for it.
      if (pending_.erase(c->cookie) == 0) c->cookie = 0;
    }
    bytes_committed_.fetch_add(c->data.size(), std::memory_order_relaxed);
    callbacks_.committed(c->index, c->data, c->cookie);
  } else if (auto* r = std::get_if<raftwire::Rejected>(&m)) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (pending_.erase(r->cookie) == 0) return;
    }
    std::string why = r->message;
    if (r->maybe_committed) absl::StrAppend(&why, " (outcome unknown: it may still commit)");
    if (!r->leader_client_addr.empty()) absl::StrAppend(&why, "; leader: ", r->leader_client_addr);
    callbacks_.rejected(r->cookie, raftwire::ToStatus(r->code, why));
  } else if (auto* l = std::get_if<raftwire::Leadership>(&m)) {
    if (events_.leadership) events_.leadership(*l);
  } else if (auto* snap = std::get_if<raftwire::InstallSnapshot>(&m)) {
    absl::Status s = events_.install_snapshot
                         ? events_.install_snapshot(snap->index, snap->data)
                         : absl::FailedPreconditionError("a snapshot came and nobody installs it");
    if (!s.ok()) Die(s);
  } else if (auto* rs = std::get_if<raftwire::ReadState>(&m)) {
    if (events_.read_index) events_.read_index(rs->ctx, rs->index);
  } else if (auto* rr = std::get_if<raftwire::ReadRejected>(&m)) {
    std::string why = rr->message;
    if (!rr->leader_client_addr.empty()) {
      absl::StrAppend(&why, "; leader: ", rr->leader_client_addr);
    }
    if (events_.read_index) events_.read_index(rr->ctx, raftwire::ToStatus(rr->code, why));
  } else if (auto* mem = std::get_if<raftwire::Membership>(&m)) {
    if (events_.membership) events_.membership(*mem);
  } else if (auto* sr = std::get_if<raftwire::SnapshotRequest>(&m)) {
    if (events_.snapshot_wanted) events_.snapshot_wanted(sr->min_index);
  } else if (auto* f = std::get_if<raftwire::Fatal>(&m)) {
    Die(absl::UnavailableError(absl::StrCat("baton-raftd: ", f->message)));
  } else {
    uint64_t req = 0;
    Answer answer;
    if (auto* reply = std::get_if<raftwire::Reply>(&m)) {
      req = reply->req_id;
      answer = std::move(*reply);
    } else if (auto* st = std::get_if<raftwire::StatusReply>(&m)) {
      req = st->req_id;
      answer = std::move(*st);
    } else {
      return;  // READY again: not sent after Open
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto it = calls_.find(req);
    if (it == calls_.end()) return;  // its caller gave up
    it->second.set_value(std::move(answer));
    calls_.erase(it);
  }
}

void RaftLog::Die(absl::Status why) {
  std::set<uint64_t> pending;
  std::map<uint64_t, std::promise<absl::StatusOr<Answer>>> calls;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (dead_) return;
    dead_ = true;
    pending.swap(pending_);
    calls.swap(calls_);
  }
  if (callbacks_.fatal) callbacks_.fatal(why);
  for (uint64_t cookie : pending) {
    callbacks_.rejected(
        cookie, absl::UnavailableError(
                    absl::StrCat("the replicated log stopped (outcome unknown): ", why.message())));
  }
  for (auto& [id, p] : calls) p.set_value(absl::UnavailableError(why.message()));
}

void RaftLog::Propose(Proposal p) {
  bool accepted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    accepted = open_ && !dead_;
    if (accepted) pending_.insert(p.cookie);
  }
  if (!accepted) {
    // After Close or a fatal error: rejected at once, on this thread.
    callbacks_.rejected(p.cookie, absl::UnavailableError("the replicated log is closed"));
    return;
  }
  if (absl::Status s = Send(raftwire::Encode(raftwire::Propose{p.cookie, p.data})); !s.ok()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (pending_.erase(p.cookie) == 0) return;  // Die already rejected it
    }
    callbacks_.rejected(p.cookie, absl::UnavailableError(absl::StrCat(
                                      s.message(), " (outcome unknown: it may still commit)")));
  }
}

void RaftLog::Compact(uint64_t through) {
  if (!options_.read_snapshot) return;
  auto snap = options_.read_snapshot(through);
  if (!snap.ok()) return;  // the next snapshot tries again
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!open_ || dead_) return;
  }
  Send(raftwire::Encode(raftwire::Compact{snap->first, snap->second})).IgnoreError();
}

void RaftLog::ReadIndex(uint64_t ctx) {
  absl::Status s = Send(raftwire::Encode(raftwire::ReadIndex{ctx}));
  if (!s.ok() && events_.read_index) events_.read_index(ctx, s);
}

absl::StatusOr<RaftLog::Answer> RaftLog::Call(uint64_t req_id, const std::string& frame,
                                              absl::Duration timeout) {
  std::future<absl::StatusOr<Answer>> answer;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!open_ || dead_) return absl::UnavailableError("the replicated log is closed");
    answer = calls_[req_id].get_future();
  }
  if (absl::Status s = Send(frame); !s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.erase(req_id);
    return s;
  }
  if (answer.wait_for(absl::ToChronoMilliseconds(timeout)) != std::future_status::ready) {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.erase(req_id);
    return absl::DeadlineExceededError(
        absl::StrCat("baton-raftd did not answer within ", absl::FormatDuration(timeout)));
  }
  return answer.get();
}

namespace {

absl::StatusOr<raftwire::Reply> AsReply(
    absl::StatusOr<std::variant<raftwire::Reply, raftwire::StatusReply>> a) {
  if (!a.ok()) return a.status();
  auto* r = std::get_if<raftwire::Reply>(&*a);
  if (r == nullptr) return absl::InternalError("baton-raftd answered with the wrong message");
  if (r->code != 0) {
    std::string why = r->message;
    if (!r->leader_client_addr.empty()) absl::StrAppend(&why, "; leader: ", r->leader_client_addr);
    return raftwire::ToStatus(r->code, why);
  }
  return std::move(*r);
}

}  // namespace

absl::StatusOr<raftwire::Reply> RaftLog::TransferLeadership(uint64_t to, absl::Duration timeout) {
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = next_req_++;
  }
  return AsReply(Call(id, raftwire::Encode(raftwire::TransferLeadership{id, to}), timeout));
}

absl::StatusOr<raftwire::Reply> RaftLog::AddMember(const raftwire::Member& m,
                                                   absl::Duration timeout) {
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = next_req_++;
  }
  return AsReply(Call(id, raftwire::Encode(raftwire::AddMember{id, m}), timeout));
}

absl::StatusOr<raftwire::Reply> RaftLog::RemoveMember(uint64_t member, absl::Duration timeout) {
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = next_req_++;
  }
  return AsReply(Call(id, raftwire::Encode(raftwire::RemoveMember{id, member}), timeout));
}

absl::StatusOr<raftwire::Reply> RaftLog::ListMembers(absl::Duration timeout) {
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = next_req_++;
  }
  return AsReply(Call(id, raftwire::Encode(raftwire::ListMembers{id}), timeout));
}

absl::StatusOr<raftwire::StatusReply> RaftLog::Status(absl::Duration timeout) {
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = next_req_++;
  }
  auto a = Call(id, raftwire::Encode(raftwire::Status{id}), timeout);
  if (!a.ok()) return a.status();
  auto* s = std::get_if<raftwire::StatusReply>(&*a);
  if (s == nullptr) return absl::InternalError("baton-raftd answered with the wrong message");
  if (s->code != 0) return raftwire::ToStatus(s->code, s->message);
  return std::move(*s);
}

std::string RaftLog::Reap(absl::Duration grace) {
  pid_t pid = pid_.exchange(0);
  if (pid == 0) return "was already stopped";
  int status = 0;
  absl::Time give_up = absl::Now() + grace;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return DescribeExit(status);
    if (r < 0 && errno != EINTR) return "could not be waited for";
    if (absl::Now() > give_up) break;
    absl::SleepFor(absl::Milliseconds(5));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return absl::StrCat("did not exit within ", absl::FormatDuration(grace), " and was killed");
}

void RaftLog::Close() {
  bool was_open;
  {
    std::lock_guard<std::mutex> lock(mu_);
    was_open = open_;
    open_ = false;
  }
  if (fd_ >= 0) {
    // baton-raftd exits when its socket closes; the reader then sees the end.
    shutdown(fd_, SHUT_RDWR);
  }
  if (reader_.joinable()) reader_.join();
  if (pid_.load() != 0) Reap(absl::Seconds(10));
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  if (!was_open) return;
  std::set<uint64_t> pending;
  std::map<uint64_t, std::promise<absl::StatusOr<Answer>>> calls;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending.swap(pending_);
    calls.swap(calls_);
  }
  for (uint64_t cookie : pending) {
    callbacks_.rejected(cookie, absl::UnavailableError(
                                    "the replicated log closed (outcome unknown: it may commit)"));
  }
  for (auto& [id, p] : calls) p.set_value(absl::UnavailableError("the replicated log closed"));
}

}  // namespace baton::storage
