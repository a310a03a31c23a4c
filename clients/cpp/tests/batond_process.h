// BatondProcess: a real batond started from the binary named by env BATOND
// (default: the batond target of the same build tree), listening on
// 127.0.0.1 port 0, with a fresh temporary data directory (unless extra_args
// name their own --data_dir or say --durability=none). Stopped with SIGTERM
// when destroyed, and its data directory removed; killed with the test
// process if that dies first (PR_SET_PDEATHSIG).
//
// Thread safety: one owner thread; address() from any thread.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace baton::testing {

class BatondProcess {
 public:
  // Starts batond with `extra_args` (plus --data_dir of a fresh temporary
  // directory, unless they choose their own or --durability=none) and waits
  // for its "listening on" line.
  static absl::StatusOr<std::unique_ptr<BatondProcess>> Start(
      std::vector<std::string> extra_args = {});
  ~BatondProcess();
  BatondProcess(const BatondProcess&) = delete;
  BatondProcess& operator=(const BatondProcess&) = delete;

  const std::string& address() const { return address_; }
  int port() const { return port_; }

  // SIGTERM, and wait for the exit. Idempotent.
  void Stop();
  // SIGKILL, and wait: a crash, with no clean shutdown.
  void Kill();

 private:
  BatondProcess() = default;
  void Signal(int signo);

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::thread drain_;  // reads the rest of stdout, so batond never blocks on it
  std::string address_;
  int port_ = 0;
  std::string data_dir_;  // made by Start, removed by the destructor; "" if none
};

}  // namespace baton::testing
