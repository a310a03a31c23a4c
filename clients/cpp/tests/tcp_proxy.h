// TcpProxy: a TCP forwarder on 127.0.0.1 port 0 in front of a server, whose
// connections a test can cut: to drop a client's connection without stopping
// the server (the client must reconnect), or to make the server unreachable
// for a while (the client's session must then be declared lost).
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace baton::testing {

class TcpProxy {
 public:
  // Forwards to 127.0.0.1:`target_port`.
  explicit TcpProxy(int target_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // Closes every open connection (both sides).
  void DropConnections();
  // While blocked, open connections are closed and new ones are closed as
  // soon as they are accepted.
  void SetBlocked(bool blocked);
  // While frozen, nothing is forwarded either way: what each side sends
  // stays in the kernel's buffers (sent, as far as the sender knows, and
  // not received). Dropping the connections then loses it.
  void SetFrozen(bool frozen);
  int connections_accepted() const { return accepted_.load(); }

 private:
  struct Pair {
    int client;
    int server;
  };
  void Run();
  void Wake();
  void CloseAll();  // REQUIRES: called on the proxy thread

  const int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stop_{false};
  std::atomic<bool> blocked_{false};
  std::atomic<bool> drop_{false};
  std::atomic<bool> frozen_{false};
  std::atomic<int> accepted_{0};
  std::vector<Pair> pairs_;  // only the proxy thread touches it
  std::thread thread_;
};

}  // namespace baton::testing
