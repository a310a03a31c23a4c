#include "tests/test_env.h"

#include <stdlib.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "security/certs.h"
#include "tests/token_util.h"

namespace baton::testing {

namespace {

std::unique_ptr<BatondProcess>& Server() {
  static std::unique_ptr<BatondProcess> server;
  return server;
}

// The secure suite's files: CA, server certificate and key, tokens, policy.
struct SecureFiles {
  std::filesystem::path dir;
  std::string token;
  std::string operator()(const std::string& name) const { return (dir / name).string(); }
};
SecureFiles& Secure() {
  static SecureFiles files;
  return files;
}

// Starts the shared server before the first test and stops it after the last.
class BatondEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    std::vector<std::string> args;
    if (SecureSuite()) {
      SecureFiles& f = Secure();
      std::string pattern =
          (std::filesystem::temp_directory_path() / "baton-cpp-suite-XXXXXX").string();
      ASSERT_NE(mkdtemp(pattern.data()), nullptr);
      f.dir = pattern;
      KeyPair ca = MakeCa("Suite CA");
      KeyPair server = MakeCert(ca, {.common_name = "batond"});
      std::ofstream(f("ca.pem")) << ca.cert_pem;
      std::ofstream(f("server.pem")) << server.cert_pem;
      std::ofstream(f("server.key")) << server.key_pem;
      f.token = absl::StrCat("suite-", absl::Hex(std::random_device()()),
                             absl::Hex(std::random_device()()));
      std::ofstream(f("tokens")) << "suite " << Sha256Hex(f.token) << "\n";
      std::ofstream(f("policy")) << "role all admin *\ngrant suite all\n";
      args = {"--tls_cert=" + f("server.pem"), "--tls_key=" + f("server.key"),
              "--auth_policy=" + f("policy"), "--auth_tokens=" + f("tokens")};
    }
    auto started = BatondProcess::Start(args);
    ASSERT_TRUE(started.ok()) << started.status();
    Server() = std::move(*started);
  }
  void TearDown() override {
    Server().reset();
    if (!Secure().dir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(Secure().dir, ec);
    }
  }
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

bool SecureSuite() {
  const char* secure = getenv("BATON_TEST_SECURE");
  return secure != nullptr && std::strcmp(secure, "1") == 0;
}

ClientOptions SuiteOptions(ClientOptions options) {
  if (SuiteTransport() == Transport::kUnary) options.transport = Transport::kUnary;
  if (!SecureSuite() || options.tls || options.credentials || !options.token.empty()) {
    return options;
  }
  options.tls = ClientTls{.ca_file = Secure()("ca.pem"), .server_name = "localhost"};
  options.token = Secure().token;
  return options;
}

Transport SuiteTransport() {
  const char* transport = std::getenv("BATON_TEST_TRANSPORT");
  return transport != nullptr && std::string(transport) == "unary" ? Transport::kUnary
                                                                   : Transport::kStream;
}

std::shared_ptr<grpc::Channel> SuiteChannel(const std::string& address) {
  if (!SecureSuite()) return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  std::ifstream in(Secure()("ca.pem"));
  std::stringstream ca;
  ca << in.rdbuf();
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  return grpc::CreateCustomChannel(
      address,
      grpc::SslCredentials(
          {.pem_root_certs = ca.str(), .pem_private_key = "", .pem_cert_chain = ""}),
      args);
}

void AddSuiteToken(grpc::ClientContext& context) {
  if (SecureSuite()) context.AddMetadata("authorization", "Bearer " + Secure().token);
}

std::string Name(const std::string& suffix) {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = absl::StrCat("cpp/", test_runs.load(), "/");
  if (info != nullptr) name += std::string(info->test_suite_name()) + "." + info->name() + "/";
  return name + suffix;
}

Client MustConnect(const std::string& address, ClientOptions options) {
  absl::StatusOr<Client> client =
      address.empty() ? Client::Connect(SharedServer().address(), SuiteOptions(std::move(options)))
                      : Client::Connect(address, std::move(options));
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
