// ClientOptions::tls against batond serving TLS and mutual TLS: the right CA
// (and client certificate) connects and can lock; a wrong CA, a missing
// client certificate or plaintext cannot; bad options are refused at once.
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "security/certs.h"
#include "tests/test_env.h"
#include "tests/token_util.h"

namespace baton::testing {
namespace {

namespace fs = std::filesystem;

class TlsFiles {
 public:
  TlsFiles() {
    std::string pattern = (fs::temp_directory_path() / "baton-cpp-tls-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    dir_ = pattern;
    KeyPair ca = MakeCa("Server CA"), client_ca = MakeCa("Client CA"), other = MakeCa("Other CA");
    Write("ca.pem", ca.cert_pem);
    Write("other-ca.pem", other.cert_pem);
    Write("client-ca.pem", client_ca.cert_pem);
    Install("server", MakeCert(ca, {.common_name = "batond"}));
    Install("client", MakeCert(client_ca, {.common_name = "worker", .alt_names = ""}));
    Install("stranger", MakeCert(other, {.common_name = "worker", .alt_names = ""}));
  }
  ~TlsFiles() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string operator()(const std::string& name) const { return (fs::path(dir_) / name).string(); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream((*this)(name), std::ios::binary) << text;
  }

 private:
  void Install(const std::string& name, const KeyPair& pair) {
    Write(name + ".pem", pair.cert_pem);
    Write(name + ".key", pair.key_pem);
  }
  std::string dir_;
};

// Connect waits for the connection until connect_timeout, so a refused
// handshake ends as DEADLINE_EXCEEDED (UNAVAILABLE if gRPC gives up first).
bool Refused(const absl::Status& s) {
  return s.code() == absl::StatusCode::kDeadlineExceeded ||
         s.code() == absl::StatusCode::kUnavailable;
}

ClientOptions Quick(std::optional<ClientTls> tls) {
  return {.connect_timeout = absl::Seconds(2), .tls = std::move(tls)};
}

TEST(TlsTest, TheServersCaConnectsAndLocksAWrongCaOrPlaintextDoesNot) {
  TlsFiles f;
  auto server = BatondProcess::Start(
      {"--durability=none", "--tls_cert=" + f("server.pem"), "--tls_key=" + f("server.key")});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = (*server)->address();

  auto client = Client::Connect(address, Quick(ClientTls{.ca_file = f("ca.pem")}));
  ASSERT_TRUE(client.ok()) << client.status();
  auto held = client->Lock(Name()).Acquire();
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_TRUE(held->Release().ok());

  auto named = Client::Connect(
      address, Quick(ClientTls{.ca_file = f("ca.pem"), .server_name = "localhost"}));
  EXPECT_TRUE(named.ok()) << named.status();
  auto wrong_name = Client::Connect(
      address, Quick(ClientTls{.ca_file = f("ca.pem"), .server_name = "elsewhere.example"}));
  EXPECT_TRUE(Refused(wrong_name.status())) << wrong_name.status();
  auto wrong_ca = Client::Connect(address, Quick(ClientTls{.ca_file = f("other-ca.pem")}));
  EXPECT_TRUE(Refused(wrong_ca.status())) << wrong_ca.status();
  auto plain = Client::Connect(address, Quick(std::nullopt));
  EXPECT_TRUE(Refused(plain.status())) << plain.status();
}

TEST(TlsTest, MutualTlsNeedsACertificateOfTheClientCa) {
  TlsFiles f;
  auto server =
      BatondProcess::Start({"--durability=none", "--tls_cert=" + f("server.pem"),
                            "--tls_key=" + f("server.key"), "--client_ca=" + f("client-ca.pem")});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = (*server)->address();
  auto with = [&](const std::string& who) {
    return Client::Connect(address, Quick(ClientTls{.ca_file = f("ca.pem"),
                                                    .cert_file = f(who + ".pem"),
                                                    .key_file = f(who + ".key")}));
  };
  auto client = with("client");
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_TRUE(client->Lock(Name()).Acquire().ok());
  EXPECT_TRUE(Refused(with("stranger").status()));
  auto anonymous = Client::Connect(address, Quick(ClientTls{.ca_file = f("ca.pem")}));
  EXPECT_TRUE(Refused(anonymous.status())) << anonymous.status();
}

// With a policy, the client certificate's common name is the principal;
// a token, when sent, names it instead.
TEST(TlsTest, TheCertificateOrTheTokenNamesThePrincipal) {
  TlsFiles f;
  f.Write("policy", "role team-a write team-a/\ngrant worker team-a\ngrant robot team-a\n");
  f.Write("tokens", "robot " + Sha256Hex("robot-secret") + "\n");
  auto server =
      BatondProcess::Start({"--durability=none", "--tls_cert=" + f("server.pem"),
                            "--tls_key=" + f("server.key"), "--client_ca=" + f("client-ca.pem"),
                            "--auth_policy=" + f("policy"), "--auth_tokens=" + f("tokens")});
  ASSERT_TRUE(server.ok()) << server.status();
  ClientTls tls{.ca_file = f("ca.pem"), .cert_file = f("client.pem"), .key_file = f("client.key")};
  auto worker = Client::Connect((*server)->address(), Quick(tls));
  ASSERT_TRUE(worker.ok()) << worker.status();
  EXPECT_TRUE(worker->Lock("team-a/" + Name()).Acquire().ok());
  auto denied = worker->Lock("team-b/" + Name()).Acquire();
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied) << denied.status();
  ClientOptions robot = Quick(tls);
  robot.token = "robot-secret";
  auto as_robot = Client::Connect((*server)->address(), robot);
  ASSERT_TRUE(as_robot.ok()) << as_robot.status();
  EXPECT_TRUE(as_robot->Lock("team-a/" + Name()).Acquire().ok());
  robot.token = "not-the-secret";
  EXPECT_EQ(Client::Connect((*server)->address(), robot).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(TlsTest, BadOptionsAreRefusedBeforeConnecting) {
  TlsFiles f;
  auto half = Client::Connect("127.0.0.1:1", Quick(ClientTls{.cert_file = f("client.pem")}));
  EXPECT_EQ(half.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(half.status().message().find("go together"), std::string::npos) << half.status();
  auto missing = Client::Connect("127.0.0.1:1", Quick(ClientTls{.ca_file = f("nope.pem")}));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("nope.pem"), std::string::npos) << missing.status();
}

}  // namespace
}  // namespace baton::testing
