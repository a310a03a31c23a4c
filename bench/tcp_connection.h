// TcpConnection: a blocking TCP connection with a read buffer, for the
// benchmark's clients of text protocols (Redis's RESP, beanstalkd's). Every
// read and write is bounded by an I/O timeout, so a stuck server cannot hold
// a client forever.
//
// Thread-safety: an instance is used by one thread only.
#ifndef BATON_BENCH_TCP_CONNECTION_H_
#define BATON_BENCH_TCP_CONNECTION_H_

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace baton::bench {

class TcpConnection {
 public:
  // Connects to `addr` ("host:port"), waiting at most `connect_timeout`.
  // Every later read or write fails with DEADLINE_EXCEEDED if it makes no
  // progress for `io_timeout`. Nagle's algorithm is off: requests are small
  // and written whole. Errors: INVALID_ARGUMENT (bad address), UNAVAILABLE.
  static absl::StatusOr<std::unique_ptr<TcpConnection>> Connect(
      const std::string& addr, std::chrono::milliseconds connect_timeout,
      std::chrono::milliseconds io_timeout);

  ~TcpConnection();
  TcpConnection(const TcpConnection&) = delete;
  TcpConnection& operator=(const TcpConnection&) = delete;

  // Writes all of `data`.
  [[nodiscard]] absl::Status Write(absl::string_view data);

  // Reads up to and including the next "\r\n"; `*line` gets what came before
  // it.
  [[nodiscard]] absl::Status ReadLine(std::string* line);

  // Reads exactly `n` bytes into `*out`.
  [[nodiscard]] absl::Status ReadExact(size_t n, std::string* out);

 private:
  explicit TcpConnection(int fd) : fd_(fd) {}

  // Appends what the socket has (at least one byte) to buffer_.
  absl::Status Fill();

  const int fd_;
  // Received bytes not consumed yet: buffer_[start_, end_).
  std::vector<char> buffer_;
  size_t start_ = 0;
  size_t end_ = 0;
};

}  // namespace baton::bench

#endif  // BATON_BENCH_TCP_CONNECTION_H_
