#include "tests/batond_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace baton::testing {

namespace {

std::string BatondPath() {
  const char* env = std::getenv("BATOND");
  if (env != nullptr && *env != '\0') return env;
  return BATON_DEFAULT_BATOND;
}

// True if batond flags `args` choose their own --data_dir or say
// --durability=none: then Start adds no data directory.
bool NamesOwnDataDir(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (!absl::StartsWith(args[i], "-")) continue;
    std::string_view flag = args[i];
    flag.remove_prefix(std::min(flag.find_first_not_of('-'), flag.size()));
    std::string_view name = flag.substr(0, flag.find('='));
    std::string_view value;
    if (name.size() < flag.size()) {
      value = flag.substr(name.size() + 1);
    } else if (i + 1 < args.size()) {
      value = args[i + 1];  // "--flag value"
    }
    if (name == "data_dir" || (name == "durability" && value == "none")) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BatondProcess>> BatondProcess::Start(
    std::vector<std::string> extra_args) {
  std::string path = BatondPath();
  if (access(path.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("batond not found at ", path, " (set env BATOND)"));
  }
  std::vector<std::string> args = {
      path, "--listen", "127.0.0.1:0", "--shards", "2", "--shutdown_grace_ms", "500"};
  // Owns the data directory from here on: an early return removes it.
  std::unique_ptr<BatondProcess> p(new BatondProcess());
  if (!NamesOwnDataDir(extra_args)) {
    std::error_code ec;
    std::string dir_template =
        (std::filesystem::temp_directory_path(ec) / "baton-cpp-test-data-XXXXXX").string();
    if (ec || mkdtemp(dir_template.data()) == nullptr) {
      return absl::InternalError("cannot make a temporary data directory");
    }
    p->data_dir_ = dir_template;
    args.push_back("--data_dir");
    args.push_back(p->data_dir_);
  }
  for (auto& a : extra_args) args.push_back(std::move(a));

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    // Child: die with the test process; stdout into the pipe.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    dup2(pipe_fds[1], STDOUT_FILENO);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  p->pid_ = pid;
  p->stdout_fd_ = pipe_fds[0];

  // Read until "listening on HOST:PORT\n" (10 s at most).
  std::string out;
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (out.find('\n') == std::string::npos) {
    int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (left <= 0) return absl::DeadlineExceededError("batond did not report its port in 10 s");
    pollfd pfd{p->stdout_fd_, POLLIN, 0};
    if (poll(&pfd, 1, left) <= 0) continue;
    char buf[256];
    ssize_t n = read(p->stdout_fd_, buf, sizeof buf);
    if (n <= 0) return absl::InternalError(absl::StrCat("batond exited early: ", out));
    out.append(buf, static_cast<size_t>(n));
  }
  std::string line = out.substr(0, out.find('\n'));
  size_t colon = line.rfind(':');
  if (!absl::StartsWith(line, "listening on ") || colon == std::string::npos ||
      !absl::SimpleAtoi(line.substr(colon + 1), &p->port_)) {
    return absl::InternalError(absl::StrCat("unexpected first line from batond: ", line));
  }
  p->address_ = absl::StrCat("127.0.0.1:", p->port_);
  int fd = p->stdout_fd_;
  p->drain_ = std::thread([fd] {
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0) {
    }
  });
  return p;
}

BatondProcess::~BatondProcess() {
  Stop();
  if (drain_.joinable()) drain_.join();
  if (stdout_fd_ >= 0) close(stdout_fd_);
  if (!data_dir_.empty()) {
    std::error_code ec;  // best effort
    std::filesystem::remove_all(data_dir_, ec);
  }
}

void BatondProcess::Signal(int signo) {
  if (pid_ <= 0) return;
  kill(pid_, signo);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

void BatondProcess::Stop() { Signal(SIGTERM); }

void BatondProcess::Kill() { Signal(SIGKILL); }

}  // namespace baton::testing
