// QueueClient for Redis: a list used as a queue, the way Redis documents it.
// Producers LPUSH, consumers BRPOP (blocking, with a timeout); FIFO. Redis
// has no acknowledgement: BRPOP removes the item, so Ack does nothing and an
// item whose consumer dies after BRPOP is lost (at-most-once), which is less
// work per item than Baton's and beanstalkd's get + ack.
//
// Speaks RESP2 over a plain blocking TCP connection: requests are arrays of
// bulk strings, each written with one send; replies are parsed as far as
// these commands need (simple strings, errors, integers, bulk strings,
// arrays, and their nil forms).
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "bench/queue_client.h"
#include "bench/tcp_connection.h"

namespace baton::bench {
namespace {

// Deepest nesting of arrays accepted in a reply; BRPOP's is 1.
constexpr int kMaxDepth = 4;
// Largest bulk string or array accepted, against a corrupt length.
constexpr int64_t kMaxLength = 64 * 1024 * 1024;

struct Reply {
  // '+' simple string, '-' error, ':' integer, '$' bulk string, '*' array.
  char type = 0;
  // A nil bulk string ($-1) or nil array (*-1), e.g. BRPOP's timeout.
  bool nil = false;
  std::string text;
  int64_t integer = 0;
  std::vector<Reply> elements;
};

// Appends one bulk string to a RESP request.
void AppendBulk(std::string* request, absl::string_view arg) {
  absl::StrAppend(request, "$", arg.size(), "\r\n", arg, "\r\n");
}

// A request of `args`, to write with one send.
std::string Request(std::initializer_list<absl::string_view> args) {
  std::string request = absl::StrCat("*", args.size(), "\r\n");
  for (absl::string_view arg : args) AppendBulk(&request, arg);
  return request;
}

absl::Status ReadReply(TcpConnection& connection, int depth, Reply* reply) {
  std::string line;
  if (absl::Status status = connection.ReadLine(&line); !status.ok()) return status;
  if (line.empty()) return absl::DataLossError("redis: empty reply line");
  reply->type = line[0];
  const absl::string_view rest = absl::string_view(line).substr(1);
  switch (reply->type) {
    case '+':
    case '-':
      reply->text = std::string(rest);
      return absl::OkStatus();
    case ':':
    case '$':
    case '*':
      break;
    default:
      return absl::DataLossError(absl::StrCat("redis: unexpected reply '", line, "'"));
  }
  if (!absl::SimpleAtoi(rest, &reply->integer) || reply->integer > kMaxLength) {
    return absl::DataLossError(absl::StrCat("redis: bad number in reply '", line, "'"));
  }
  if (reply->type == ':') return absl::OkStatus();
  if (reply->integer < 0) {
    reply->nil = true;
    return absl::OkStatus();
  }
  const auto length = static_cast<size_t>(reply->integer);
  if (reply->type == '$') {
    if (absl::Status status = connection.ReadExact(length + 2, &reply->text); !status.ok()) {
      return status;
    }
    if (absl::string_view(reply->text).substr(length) != "\r\n") {
      return absl::DataLossError("redis: bulk string not followed by CRLF");
    }
    reply->text.resize(length);
    return absl::OkStatus();
  }
  if (depth >= kMaxDepth) return absl::DataLossError("redis: reply nested too deeply");
  reply->elements.resize(length);
  for (Reply& element : reply->elements) {
    if (absl::Status status = ReadReply(connection, depth + 1, &element); !status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

class RedisQueueClient : public QueueClient {
 public:
  RedisQueueClient(std::string addr, std::chrono::milliseconds call_timeout)
      : addr_(std::move(addr)), call_timeout_(call_timeout) {
    put_prefix_ = "*3\r\n";
    AppendBulk(&put_prefix_, "LPUSH");
    AppendBulk(&put_prefix_, kQueueName);
    get_request_ = Request({"BRPOP", kQueueName, absl::StrCat(kGetTimeout.count())});
  }

  absl::Status Open(std::chrono::milliseconds connect_timeout) override {
    // A blocked BRPOP may legitimately take kGetTimeout before it answers.
    auto connection = TcpConnection::Connect(addr_, connect_timeout, kGetTimeout + call_timeout_);
    if (!connection.ok()) return connection.status();
    connection_ = *std::move(connection);
    Reply reply;
    if (absl::Status status = Call(Request({"PING"}), "PING", &reply); !status.ok()) return status;
    return Expect(reply, '+', "PING");
  }

  absl::Status Purge() override {
    Reply reply;
    if (absl::Status status = Call(Request({"DEL", kQueueName}), "DEL", &reply); !status.ok()) {
      return status;
    }
    return Expect(reply, ':', "DEL");
  }

  absl::Status Put(absl::string_view data) override {
    request_.assign(put_prefix_);
    AppendBulk(&request_, data);
    Reply reply;
    if (absl::Status status = Call(request_, "LPUSH", &reply); !status.ok()) return status;
    return Expect(reply, ':', "LPUSH");
  }

  absl::StatusOr<bool> Get(std::string* data) override {
    Reply reply;
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
  absl::Status Call(absl::string_view request, absl::string_view what, Reply* reply) {
    absl::Status status = connection_->Write(request);
    if (status.ok()) status = ReadReply(*connection_, 0, reply);
    if (!status.ok())
      return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
    return absl::OkStatus();
  }

  // Fails unless `reply` is of `type`; turns a Redis error into a status.
  static absl::Status Expect(const Reply& reply, char type, absl::string_view what) {
    if (reply.type == '-') {
      return absl::FailedPreconditionError(absl::StrCat(what, ": ", reply.text));
    }
    if (reply.type != type) {
      return absl::DataLossError(absl::StrCat(what, ": want a '", std::string(1, type),
                                              "' reply, got '", std::string(1, reply.type), "'"));
    }
    return absl::OkStatus();
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
