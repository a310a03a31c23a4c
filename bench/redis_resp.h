// RESP2, Redis's wire protocol, as far as baton-bench's Redis clients need
// it: requests are arrays of bulk strings, each written with one send;
// replies are parsed as simple strings, errors, integers, bulk strings,
// arrays, and their nil forms.
#ifndef BATON_BENCH_REDIS_RESP_H_
#define BATON_BENCH_REDIS_RESP_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "bench/tcp_connection.h"

namespace baton::bench {

struct RespReply {
  // '+' simple string, '-' error, ':' integer, '$' bulk string, '*' array.
  char type = 0;
  // A nil bulk string ($-1) or nil array (*-1), e.g. BRPOP's timeout or a
  // SET NX that did not set.
  bool nil = false;
  std::string text;
  int64_t integer = 0;
  std::vector<RespReply> elements;
};

// Appends one bulk string to a RESP request.
void AppendBulk(std::string* request, absl::string_view arg);

// A request of `args`, to write with one send.
std::string RespRequest(std::initializer_list<absl::string_view> args);

// Reads one reply from `connection`.
[[nodiscard]] absl::Status ReadReply(TcpConnection& connection, RespReply* reply);

// Writes `request` and reads its reply; errors are prefixed with `what`.
[[nodiscard]] absl::Status RespCall(TcpConnection& connection, absl::string_view request,
                                    absl::string_view what, RespReply* reply);

// Fails unless `reply` is of `type`; turns a Redis error into
// FAILED_PRECONDITION.
[[nodiscard]] absl::Status ExpectReply(const RespReply& reply, char type, absl::string_view what);

}  // namespace baton::bench

#endif  // BATON_BENCH_REDIS_RESP_H_
