// LockClient for Redis: the standard single-instance Redis lock (the
// pattern of Redis's SET documentation and of redis-py's Lock).
//
//   acquire  SET name token NX PX 30000   "+OK": held; nil: someone holds it
//   release  EVALSHA <compare-and-delete> 1 name token   (1: released)
//
// The token is unique per acquisition, so a client whose lock expired
// cannot delete its successor's. Redis has no blocking wait for a lock:
// while the name is held, the client polls, one SET NX every kPollInterval,
// for `call_timeout` at most, as redis-py's Lock does (its default interval
// is 100 ms; 1 ms here, which favours Redis). So there is no FIFO order and
// no fencing token: whichever poll comes first after a release wins.
//
// The script is loaded once with SCRIPT LOAD and run by its hash (redis-py's
// register_script); if Redis forgot it (NOSCRIPT) it is sent whole with EVAL.
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/lock_client.h"
#include "bench/redis_resp.h"
#include "bench/tcp_connection.h"

namespace baton::bench {
namespace {

constexpr absl::string_view kReleaseScript =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
    "else return 0 end";
// The lock's lease: longer than any cycle; a client that dies frees its
// lock this long after.
constexpr absl::string_view kLeaseMs = "30000";
constexpr std::chrono::milliseconds kPollInterval(1);

class RedisLockClient : public LockClient {
 public:
  RedisLockClient(std::string addr, int index, std::chrono::milliseconds connect_timeout,
                  std::chrono::milliseconds call_timeout)
      : addr_(std::move(addr)),
        index_(index),
        connect_timeout_(connect_timeout),
        call_timeout_(call_timeout),
        token_prefix_(absl::StrFormat("%08x-%d-", std::random_device()(), index)) {}

  absl::Status Open() override {
    auto connection = TcpConnection::Connect(addr_, connect_timeout_, call_timeout_);
    if (!connection.ok()) return connection.status();
    connection_ = *std::move(connection);
    RespReply reply;
    if (absl::Status s = RespCall(*connection_, RespRequest({"SCRIPT", "LOAD", kReleaseScript}),
                                  "SCRIPT LOAD", &reply);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = ExpectReply(reply, '$', "SCRIPT LOAD"); !s.ok()) return s;
    script_sha_ = reply.text;
    // A run that died holding its lock leaves it for the lease's length:
    // clear the names this client (client 0: also the shared one) will use.
    // Every client opens before any acquires.
    const std::string own = UncontendedLock(index_);
    const std::string request =
        index_ == 0 ? RespRequest({"DEL", own, kContendedLock}) : RespRequest({"DEL", own});
    if (absl::Status s = RespCall(*connection_, request, "DEL", &reply); !s.ok()) return s;
    return ExpectReply(reply, ':', "DEL");
  }

  absl::Status Acquire(const std::string& name) override {
    name_ = name;
    token_ = absl::StrCat(token_prefix_, ++acquisitions_);
    const std::string request = RespRequest({"SET", name, token_, "NX", "PX", kLeaseMs});
    const auto give_up = std::chrono::steady_clock::now() + call_timeout_;
    RespReply reply;
    for (;;) {
      if (absl::Status s = RespCall(*connection_, request, "SET NX", &reply); !s.ok()) return s;
      if (reply.type == '+') return absl::OkStatus();  // "+OK": ours.
      if (reply.type != '$' || !reply.nil) return ExpectReply(reply, '+', "SET NX");
      // Held by another client: poll.
      if (std::chrono::steady_clock::now() >= give_up) {
        return absl::DeadlineExceededError(
            absl::StrCat("SET NX: ", name, " still held after ", call_timeout_.count(), " ms"));
      }
      std::this_thread::sleep_for(kPollInterval);
    }
  }

  absl::Status Release() override {
    RespReply reply;
    absl::Status s = RespCall(
        *connection_, RespRequest({"EVALSHA", script_sha_, "1", name_, token_}), "EVALSHA", &reply);
    if (s.ok() && reply.type == '-' && absl::StartsWith(reply.text, "NOSCRIPT")) {
      s = RespCall(*connection_, RespRequest({"EVAL", kReleaseScript, "1", name_, token_}), "EVAL",
                   &reply);
    }
    if (!s.ok()) return s;
    if (s = ExpectReply(reply, ':', "release"); !s.ok()) return s;
    if (reply.integer != 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("release: ", name_, " was not held with our token (lease expired?)"));
    }
    return absl::OkStatus();
  }

  void Close() override { connection_.reset(); }

 private:
  const std::string addr_;
  const int index_;
  const std::chrono::milliseconds connect_timeout_;
  const std::chrono::milliseconds call_timeout_;
  // Tokens are this prefix and a count: unique per acquisition and client.
  const std::string token_prefix_;
  std::unique_ptr<TcpConnection> connection_;
  std::string script_sha_;
  int64_t acquisitions_ = 0;
  // The lock held (or last held) and its token.
  std::string name_;
  std::string token_;
};

}  // namespace

std::unique_ptr<LockClient> NewRedisLockClient(const std::string& addr, int index,
                                               std::chrono::milliseconds connect_timeout,
                                               std::chrono::milliseconds call_timeout) {
  return std::make_unique<RedisLockClient>(addr, index, connect_timeout, call_timeout);
}

}  // namespace baton::bench
