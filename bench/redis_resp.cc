// RESP2 requests and replies.
#include "bench/redis_resp.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace baton::bench {
namespace {

// Deepest nesting of arrays accepted in a reply; BRPOP's is 1.
constexpr int kMaxDepth = 4;
// Largest bulk string or array accepted, against a corrupt length.
constexpr int64_t kMaxLength = 64 * 1024 * 1024;

absl::Status ReadReplyAt(TcpConnection& connection, int depth, RespReply* reply) {
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
  for (RespReply& element : reply->elements) {
    if (absl::Status status = ReadReplyAt(connection, depth + 1, &element); !status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

}  // namespace

void AppendBulk(std::string* request, absl::string_view arg) {
  absl::StrAppend(request, "$", arg.size(), "\r\n", arg, "\r\n");
}

std::string RespRequest(std::initializer_list<absl::string_view> args) {
  std::string request = absl::StrCat("*", args.size(), "\r\n");
  for (absl::string_view arg : args) AppendBulk(&request, arg);
  return request;
}

absl::Status ReadReply(TcpConnection& connection, RespReply* reply) {
  *reply = RespReply();
  return ReadReplyAt(connection, 0, reply);
}

absl::Status RespCall(TcpConnection& connection, absl::string_view request, absl::string_view what,
                      RespReply* reply) {
  absl::Status status = connection.Write(request);
  if (status.ok()) status = ReadReply(connection, reply);
  if (!status.ok()) return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
  return absl::OkStatus();
}

absl::Status ExpectReply(const RespReply& reply, char type, absl::string_view what) {
  if (reply.type == '-') {
    return absl::FailedPreconditionError(absl::StrCat(what, ": ", reply.text));
  }
  if (reply.type != type) {
    return absl::DataLossError(absl::StrCat(what, ": want a '", std::string(1, type),
                                            "' reply, got '", std::string(1, reply.type), "'"));
  }
  return absl::OkStatus();
}

}  // namespace baton::bench
