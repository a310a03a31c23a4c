#include "tests/test_env.h"

#include <atomic>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"

namespace baton::testing {

namespace {

std::unique_ptr<BatondProcess>& Server() {
  static std::unique_ptr<BatondProcess> server;
  return server;
}

// Starts the shared server before the first test and stops it after the last.
class BatondEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    auto started = BatondProcess::Start();
    ASSERT_TRUE(started.ok()) << started.status();
    Server() = std::move(*started);
  }
  void TearDown() override { Server().reset(); }
};

[[maybe_unused]] ::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new BatondEnvironment);

// Counts test starts, so that names differ between runs of the same test
// (--gtest_repeat) against the one shared server.
std::atomic<int> test_runs{0};

class CountTestRuns : public ::testing::EmptyTestEventListener {
  void OnTestStart(const ::testing::TestInfo&) override { ++test_runs; }
};

[[maybe_unused]] const bool kListening = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new CountTestRuns);
  return true;
}();

}  // namespace

BatondProcess& SharedServer() { return *Server(); }

std::string Name(const std::string& suffix) {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = absl::StrCat("cpp/", test_runs.load(), "/");
  if (info != nullptr) name += std::string(info->test_suite_name()) + "." + info->name() + "/";
  return name + suffix;
}

Client MustConnect(const std::string& address, ClientOptions options) {
  absl::StatusOr<Client> client =
      Client::Connect(address.empty() ? SharedServer().address() : address, std::move(options));
  if (!client.ok()) {
    ADD_FAILURE() << "connect: " << client.status();
    std::abort();
  }
  return std::move(*client);
}

bool Eventually(const std::function<bool()>& predicate, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!predicate()) {
    if (absl::Now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

bool Free(const Client& client, const std::string& name) {
  absl::StatusOr<ResourceInfo> info = client.Admin().Describe(name);
  if (!info.ok()) return info.status().code() == absl::StatusCode::kNotFound;
  return info->holders.empty();
}

uint32_t Waiters(const Client& client, const std::string& name) {
  absl::StatusOr<ResourceInfo> info = client.Admin().Describe(name);
  return info.ok() ? info->waiters : 0;
}

}  // namespace baton::testing
