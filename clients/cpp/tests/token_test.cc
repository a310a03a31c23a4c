// ClientOptions::token against batond with a policy (--auth_policy,
// --auth_tokens): the token names the principal, whose roles decide what it
// may do; no token or a wrong one is UNAUTHENTICATED; a token is never sent
// in clear to another machine; a malformed token is refused before
// connecting.
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "tests/test_env.h"
#include "tests/token_util.h"

namespace baton::testing {
namespace {

namespace fs = std::filesystem;

class PolicyServer {
 public:
  PolicyServer() {
    std::string pattern = (fs::temp_directory_path() / "baton-cpp-token-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    dir_ = pattern;
    std::ofstream(dir_ / "policy") << "role team-a write team-a/\nrole all-read read *\n"
                                      "grant alice team-a all-read\n";
    std::ofstream(dir_ / "tokens") << "alice " << Sha256Hex("alice-secret") << "\n";
    auto s =
        BatondProcess::Start({"--durability=none", "--auth_policy=" + (dir_ / "policy").string(),
                              "--auth_tokens=" + (dir_ / "tokens").string()});
    EXPECT_TRUE(s.ok()) << s.status();
    if (s.ok()) server = *std::move(s);
  }
  ~PolicyServer() {
    server.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::unique_ptr<BatondProcess> server;

 private:
  fs::path dir_;
};

ClientOptions WithToken(std::string token) {
  return {.connect_timeout = absl::Seconds(5), .token = std::move(token)};
}

TEST(TokenTest, TheTokensPrincipalMayDoWhatItsRolesAllow) {
  PolicyServer p;
  ASSERT_NE(p.server, nullptr);
  auto alice = Client::Connect(p.server->address(), WithToken("alice-secret"));
  ASSERT_TRUE(alice.ok()) << alice.status();
  auto held = alice->Lock("team-a/" + Name()).Acquire();
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_TRUE(held->Release().ok());
  auto denied = alice->Lock("team-b/" + Name()).Acquire();
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied) << denied.status();
  EXPECT_NE(denied.status().message().find("alice"), std::string::npos) << denied.status();
}

TEST(TokenTest, NoTokenOrAWrongOneIsUnauthenticated) {
  PolicyServer p;
  ASSERT_NE(p.server, nullptr);
  auto none = Client::Connect(p.server->address(), WithToken(""));
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnauthenticated) << none.status();
  auto wrong = Client::Connect(p.server->address(), WithToken("mallory"));
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated) << wrong.status();
}

TEST(TokenTest, NeverInClearToAnotherMachine) {
  for (const char* target : {"10.1.2.3:7411", "dns:///baton.internal:7411", "[2001:db8::1]:7411"}) {
    auto c = Client::Connect(target, WithToken("alice-secret"));
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << target;
    EXPECT_NE(c.status().message().find("in clear"), std::string::npos) << c.status();
    EXPECT_EQ(c.status().message().find("alice-secret"), std::string::npos) << c.status();
  }
  auto bad = Client::Connect("127.0.0.1:1", WithToken("two words"));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << bad.status();
  auto newline = Client::Connect("127.0.0.1:1", WithToken("secret\n"));
  EXPECT_EQ(newline.status().code(), absl::StatusCode::kInvalidArgument) << newline.status();
}

}  // namespace
}  // namespace baton::testing
