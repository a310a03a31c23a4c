#include "tests/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

namespace baton::testing {

namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// Writes all of `buf`; false on error.
bool WriteAll(int fd, const char* buf, ssize_t n) {
  while (n > 0) {
    ssize_t w = send(fd, buf, static_cast<size_t>(n), MSG_NOSIGNAL);
    if (w <= 0) return false;
    buf += w;
    n -= w;
  }
  return true;
}

}  // namespace

TcpProxy::TcpProxy(int target_port) : target_port_(target_port) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr = Loopback(0);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, 64) != 0) {
    std::abort();
  }
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) std::abort();
  thread_ = std::thread([this] { Run(); });
}

TcpProxy::~TcpProxy() {
  stop_ = true;
  Wake();
  thread_.join();
  close(listen_fd_);
  close(wake_[0]);
  close(wake_[1]);
}

void TcpProxy::Wake() {
  char c = 1;
  (void)!write(wake_[1], &c, 1);
}

void TcpProxy::DropConnections() {
  drop_ = true;
  Wake();
}

void TcpProxy::SetBlocked(bool blocked) {
  blocked_ = blocked;
  if (blocked) drop_ = true;
  Wake();
}

void TcpProxy::SetFrozen(bool frozen) {
  frozen_ = frozen;
  Wake();
}

void TcpProxy::CloseAll() {
  for (const Pair& p : pairs_) {
    // RST rather than FIN: a connection cut as by a network failure.
    linger l{1, 0};
    setsockopt(p.client, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(p.client);
    close(p.server);
  }
  pairs_.clear();
}

void TcpProxy::Run() {
  char buf[64 * 1024];
  while (!stop_) {
    if (drop_.exchange(false)) CloseAll();
    std::vector<pollfd> fds;
    fds.push_back({wake_[0], POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    bool frozen = frozen_;
    if (!frozen) {
      for (const Pair& p : pairs_) {
        fds.push_back({p.client, POLLIN, 0});
        fds.push_back({p.server, POLLIN, 0});
      }
    }
    if (poll(fds.data(), fds.size(), 200) <= 0) continue;
    if (fds[0].revents != 0) {
      while (read(wake_[0], buf, sizeof buf) > 0) {
      }
      continue;  // re-check the flags first
    }
    if (fds[1].revents & POLLIN) {
      int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        ++accepted_;
        int server = -1;
        if (!blocked_) {
          server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
          sockaddr_in addr = Loopback(target_port_);
          if (connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            close(server);
            server = -1;
          }
        }
        if (server < 0) {
          close(client);
        } else {
          int one = 1;
          setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          pairs_.push_back({client, server});
        }
      }
      continue;  // the pair list changed: poll again
    }
    if (frozen) continue;
    std::vector<size_t> dead;
    for (size_t i = 0; i < pairs_.size(); ++i) {
      const pollfd& c = fds[2 + 2 * i];
      const pollfd& s = fds[3 + 2 * i];
      bool ok = true;
      if (c.revents != 0) {
        ssize_t n = recv(pairs_[i].client, buf, sizeof buf, 0);
        ok = n > 0 && WriteAll(pairs_[i].server, buf, n);
      }
      if (ok && s.revents != 0) {
        ssize_t n = recv(pairs_[i].server, buf, sizeof buf, 0);
        ok = n > 0 && WriteAll(pairs_[i].client, buf, n);
      }
      if (!ok) dead.push_back(i);
    }
    for (auto it = dead.rbegin(); it != dead.rend(); ++it) {
      close(pairs_[*it].client);
      close(pairs_[*it].server);
      pairs_.erase(pairs_.begin() + static_cast<std::ptrdiff_t>(*it));
    }
  }
  CloseAll();
}

}  // namespace baton::testing
