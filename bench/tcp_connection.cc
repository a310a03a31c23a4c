// A blocking TCP connection with an I/O timeout and a read buffer.
#include "bench/tcp_connection.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace baton::bench {
namespace {

// Most bytes asked of the socket at once.
constexpr size_t kReadChunk = 16 * 1024;

absl::Status Errno(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

absl::Status SetTimeout(int fd, int option, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  if (setsockopt(fd, SOL_SOCKET, option, &tv, sizeof(tv)) != 0) return Errno("setsockopt");
  return absl::OkStatus();
}

// Connects the non-blocking socket `fd` to `address`, waiting at most
// `timeout`, and makes it blocking again.
absl::Status ConnectWithin(int fd, const addrinfo& address, std::chrono::milliseconds timeout) {
  const int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return Errno("fcntl");
  if (connect(fd, address.ai_addr, address.ai_addrlen) != 0) {
    if (errno != EINPROGRESS) return Errno("connect");
    pollfd p{.fd = fd, .events = POLLOUT, .revents = 0};
    int ready;
    do {
      ready = poll(&p, 1, static_cast<int>(timeout.count()));
    } while (ready < 0 && errno == EINTR);
    if (ready < 0) return Errno("poll");
    if (ready == 0) {
      return absl::UnavailableError(
          absl::StrCat("could not connect within ", timeout.count(), " ms"));
    }
    int error = 0;
    socklen_t length = sizeof(error);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return Errno("getsockopt");
    if (error != 0) {
      errno = error;
      return Errno("connect");
    }
  }
  if (fcntl(fd, F_SETFL, flags) != 0) return Errno("fcntl");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<TcpConnection>> TcpConnection::Connect(
    const std::string& addr, std::chrono::milliseconds connect_timeout,
    std::chrono::milliseconds io_timeout) {
  const size_t colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == addr.size()) {
    return absl::InvalidArgumentError(absl::StrCat("want HOST:PORT, got '", addr, "'"));
  }
  const std::string host = addr.substr(0, colon);
  const std::string port = addr.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int error = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); error != 0) {
    return absl::InvalidArgumentError(absl::StrCat(addr, ": ", gai_strerror(error)));
  }
  const int fd = socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, found->ai_protocol);
  if (fd < 0) {
    freeaddrinfo(found);
    return Errno("socket");
  }
  // Owns fd from here on, so that every error path below closes it.
  std::unique_ptr<TcpConnection> connection(new TcpConnection(fd));
  absl::Status status = ConnectWithin(fd, *found, connect_timeout);
  freeaddrinfo(found);
  if (!status.ok()) return absl::Status(status.code(), absl::StrCat(addr, ": ", status.message()));
  const int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
    return Errno("setsockopt TCP_NODELAY");
  }
  if (status = SetTimeout(fd, SO_RCVTIMEO, io_timeout); !status.ok()) return status;
  if (status = SetTimeout(fd, SO_SNDTIMEO, io_timeout); !status.ok()) return status;
  return connection;
}

TcpConnection::~TcpConnection() { close(fd_); }

absl::Status TcpConnection::Write(absl::string_view data) {
  while (!data.empty()) {
    const ssize_t sent = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return absl::DeadlineExceededError("write: I/O timeout");
      }
      return Errno("write");
    }
    data.remove_prefix(static_cast<size_t>(sent));
  }
  return absl::OkStatus();
}

absl::Status TcpConnection::Fill() {
  // Move what is not consumed yet to the front, and make room for a chunk.
  if (start_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
  if (buffer_.size() - end_ < kReadChunk) buffer_.resize(end_ + kReadChunk);
  ssize_t received;
  do {
    received = recv(fd_, buffer_.data() + end_, buffer_.size() - end_, 0);
  } while (received < 0 && errno == EINTR);
  if (received == 0) return absl::UnavailableError("connection closed by the server");
  if (received < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return absl::DeadlineExceededError("read: I/O timeout");
    }
    return Errno("read");
  }
  end_ += static_cast<size_t>(received);
  return absl::OkStatus();
}

absl::Status TcpConnection::ReadLine(std::string* line) {
  // Bytes already searched for "\r\n", counted from start_.
  size_t searched = 0;
  for (;;) {
    const absl::string_view pending(buffer_.data() + start_, end_ - start_);
    if (size_t end = pending.find("\r\n", searched); end != absl::string_view::npos) {
      line->assign(pending.data(), end);
      start_ += end + 2;
      return absl::OkStatus();
    }
    // Search on from the last byte seen: it may be the '\r' of a split "\r\n".
    searched = pending.empty() ? 0 : pending.size() - 1;
    if (absl::Status status = Fill(); !status.ok()) return status;
  }
}

absl::Status TcpConnection::ReadExact(size_t n, std::string* out) {
  while (end_ - start_ < n) {
    if (absl::Status status = Fill(); !status.ok()) return status;
  }
  out->assign(buffer_.data() + start_, n);
  start_ += n;
  return absl::OkStatus();
}

}  // namespace baton::bench
