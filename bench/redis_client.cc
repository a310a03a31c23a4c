// QueueClient for Redis: a list used as a queue, the way Redis documents it.
// Producers LPUSH, consumers BRPOP (blocking, with a timeout); FIFO. Redis
// has no acknowledgement: BRPOP removes the item, so Ack does nothing and an
// item whose consumer dies after BRPOP is lost (at-most-once), which is less
// work per item than Baton's and beanstalkd's get + ack.
//
// Speaks RESP2 (bench/redis_resp.h) over a plain blocking TCP connection.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "bench/queue_client.h"
#include "bench/redis_resp.h"
#include "bench/tcp_connection.h"

namespace baton::bench {
namespace {

class RedisQueueClient : public QueueClient {
 public:
  RedisQueueClient(std::string addr, std::chrono::milliseconds call_timeout)
      : addr_(std::move(addr)), call_timeout_(call_timeout) {
    put_prefix_ = "*3\r\n";
    AppendBulk(&put_prefix_, "LPUSH");
    AppendBulk(&put_prefix_, kQueueName);
    get_request_ = RespRequest({"BRPOP", kQueueName, absl::StrCat(kGetTimeout.count())});
  }

  absl::Status Open(std::chrono::milliseconds connect_timeout) override {
    // A blocked BRPOP may legitimately take kGetTimeout before it answers.
    auto connection = TcpConnection::Connect(addr_, connect_timeout, kGetTimeout + call_timeout_);
    if (!connection.ok()) return connection.status();
    connection_ = *std::move(connection);
    RespReply reply;
    if (absl::Status status = Call(RespRequest({"PING"}), "PING", &reply); !status.ok())
      return status;
    return Expect(reply, '+', "PING");
  }

  absl::Status Purge() override {
    RespReply reply;
    if (absl::Status status = Call(RespRequest({"DEL", kQueueName}), "DEL", &reply); !status.ok()) {
      return status;
    }
    return Expect(reply, ':', "DEL");
  }

  absl::Status Put(absl::string_view data) override {
    request_.assign(put_prefix_);
    AppendBulk(&request_, data);
    RespReply reply;
    if (absl::Status status = Call(request_, "LPUSH", &reply); !status.ok()) return status;
    return Expect(reply, ':', "LPUSH");
  }

  // One LPUSH of every item (LPUSH takes many values).
  absl::Status PutMany(const std::vector<std::string>& items) override {
    request_ = absl::StrCat("*", items.size() + 2, "\r\n");
    AppendBulk(&request_, "LPUSH");
    AppendBulk(&request_, kQueueName);
    for (const std::string& item : items) AppendBulk(&request_, item);
    RespReply reply;
    if (absl::Status status = Call(request_, "LPUSH", &reply); !status.ok()) return status;
    return Expect(reply, ':', "LPUSH");
  }

  absl::StatusOr<bool> Get(std::string* data) override {
    RespReply reply;
    if (absl::Status status = Call(get_request_, "BRPOP", &reply); !status.ok()) return status;
    if (absl::Status status = Expect(reply, '*', "BRPOP"); !status.ok()) return status;
    if (reply.nil) return false;  // Timed out: the list stayed empty.
    // [key, value]
    if (reply.elements.size() != 2 || reply.elements[1].type != '$' || reply.elements[1].nil) {
      return absl::DataLossError("BRPOP: want [key, value]");
    }
    *data = std::move(reply.elements[1].text);
    return true;
  }

  absl::Status Ack() override { return absl::OkStatus(); }

  void Close() override { connection_.reset(); }

 private:
  absl::Status Call(absl::string_view request, absl::string_view what, RespReply* reply) {
    return RespCall(*connection_, request, what, reply);
  }

  static absl::Status Expect(const RespReply& reply, char type, absl::string_view what) {
    return ExpectReply(reply, type, what);
  }

  const std::string addr_;
  const std::chrono::milliseconds call_timeout_;
  std::unique_ptr<TcpConnection> connection_;
  // "LPUSH bench/q" as RESP, to which each Put appends its item.
  std::string put_prefix_;
  std::string get_request_;
  // Reused across puts to keep allocation out of the loop.
  std::string request_;
};

}  // namespace

std::unique_ptr<QueueClient> NewRedisQueueClient(const std::string& addr,
                                                 std::chrono::milliseconds call_timeout) {
  return std::make_unique<RedisQueueClient>(addr, call_timeout);
}

}  // namespace baton::bench
