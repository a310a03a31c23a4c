// TLS and mutual TLS on the client listener, over real gRPC: who can
// connect, what is refused at start, and certificate renewal without a
// restart while clients stay connected.
#include "service/security/tls.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "baton/v1/session.grpc.pb.h"
#include "integration/test_server.h"
#include "security/certs.h"

namespace baton::testing {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "baton-tls-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return (fs::path(path_) / name).string(); }

 private:
  std::string path_;
};

// Writes `pair` as NAME.pem and NAME.key in `dir`.
void Install(const TempDir& dir, const std::string& name, const KeyPair& pair) {
  WriteFileAtomically(dir / (name + ".pem"), pair.cert_pem);
  WriteFileAtomically(dir / (name + ".key"), pair.key_pem);
}

struct Client {
  std::string root_pem;  // the CA the client trusts
  KeyPair identity;      // empty: no client certificate
};

std::shared_ptr<grpc::Channel> TlsChannel(const std::string& address, const Client& c) {
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = c.root_pem;
  o.pem_private_key = c.identity.key_pem;
  o.pem_cert_chain = c.identity.cert_pem;
  grpc::ChannelArguments args;
  static std::atomic<int> n{0};
  args.SetInt("baton.test.channel", n++);  // a connection of its own
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(o), args);
}

// Opens a session over `channel`: the call's status.
grpc::Status Probe(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = v1::Sessions::NewStub(channel);
  v1::OpenSessionRequest req;
  *req.mutable_ttl() = Millis(30'000);
  v1::OpenSessionResponse resp;
  return stub->Open(Context(5'000).get(), req, &resp);
}

rpc::ServerOptions TlsOptionsIn(const TempDir& dir, bool mutual) {
  rpc::ServerOptions o = TestServer::DefaultOptions();
  o.tls.cert_file = dir / "server.pem";
  o.tls.key_file = dir / "server.key";
  if (mutual) o.tls.client_ca_file = dir / "client-ca.pem";
  o.tls.reload_interval = std::chrono::seconds(1);
  return o;
}

TEST(TlsConfigTest, PlaintextIsServedOnLoopbackOnlyUnlessAllowed) {
  security::TlsOptions plain;
  for (const char* listen :
       {"127.0.0.1:0", "127.0.0.2:7411", "[::1]:7411", "localhost:7411", "unix:/tmp/baton.sock"}) {
    EXPECT_TRUE(security::CheckTls(plain, listen).ok()) << listen;
  }
  for (const char* listen : {"0.0.0.0:7411", "[::]:7411", "10.0.0.5:7411", "baton.example:1"}) {
    auto st = security::CheckTls(plain, listen);
    ASSERT_FALSE(st.ok()) << listen;
    EXPECT_EQ(st.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(st.status().message().find("refusing to serve plaintext"), std::string::npos)
        << st.status();
  }
  plain.allow_plaintext = true;
  EXPECT_TRUE(security::CheckTls(plain, "0.0.0.0:7411").ok());
}

TEST(TlsConfigTest, AWrongOrHalfConfigurationIsRefusedWithItsReason) {
  TempDir dir;
  KeyPair ca = MakeCa("Test CA");
  Install(dir, "server", MakeCert(ca, {.common_name = "server"}));
  Install(dir, "other", MakeCert(ca, {.common_name = "other"}));
  WriteFileAtomically(dir / "junk.pem", "not a certificate\n");
  auto refused = [&](security::TlsOptions o, const std::string& why) {
    auto st = security::CheckTls(o, "127.0.0.1:0");
    ASSERT_FALSE(st.ok()) << why;
    EXPECT_EQ(st.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(st.status().message().find(why), std::string::npos) << st.status();
  };
  refused({.cert_file = dir / "server.pem"}, "go together");
  refused({.key_file = dir / "server.key"}, "go together");
  refused({.client_ca_file = dir / "server.pem"}, "--client_ca needs TLS");
  refused({.cert_file = dir / "missing.pem", .key_file = dir / "server.key"}, "cannot read");
  refused({.cert_file = dir / "junk.pem", .key_file = dir / "server.key"}, "no PEM certificate");
  refused({.cert_file = dir / "server.pem", .key_file = dir / "junk.pem"}, "no PEM private key");
  refused({.cert_file = dir / "server.pem", .key_file = dir / "other.key"}, "does not match");
  refused({.cert_file = dir / "server.pem",
           .key_file = dir / "server.key",
           .client_ca_file = dir / "junk.pem"},
          "no PEM certificate");
  auto ok = security::CheckTls({.cert_file = dir / "server.pem", .key_file = dir / "server.key"},
                               "0.0.0.0:0");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_NE(ok->subject.find("CN=server"), std::string::npos) << ok->subject;
  EXPECT_GT(ok->expires_unix, 0);
  // And the server refuses to start with them, rather than fail handshakes.
  rpc::ServerOptions o = TestServer::DefaultOptions();
  o.durability = rpc::Durability::kNone;
  o.tls = {.cert_file = dir / "server.pem", .key_file = dir / "other.key"};
  auto server = rpc::Server::Start(o);
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("does not match"), std::string::npos);
}

TEST(TlsTest, OnlyAClientTrustingTheServersCaConnects) {
  TempDir dir;
  KeyPair ca = MakeCa("Server CA"), stranger = MakeCa("Another CA");
  Install(dir, "server", MakeCert(ca, {.common_name = "server"}));
  TestServer t(TlsOptionsIn(dir, /*mutual=*/false));
  EXPECT_TRUE(Probe(TlsChannel(t.address(), {ca.cert_pem, {}})).ok());
  grpc::Status wrong_ca = Probe(TlsChannel(t.address(), {stranger.cert_pem, {}}));
  EXPECT_EQ(wrong_ca.error_code(), grpc::StatusCode::UNAVAILABLE) << wrong_ca.error_message();
  // A plaintext client gets no answer from a TLS listener.
  grpc::Status plain = Probe(t.NewChannel());
  EXPECT_EQ(plain.error_code(), grpc::StatusCode::UNAVAILABLE) << plain.error_message();
}

TEST(TlsTest, MutualTlsAdmitsOnlyValidCertificatesOfTheClientCa) {
  TempDir dir;
  KeyPair ca = MakeCa("Server CA"), client_ca = MakeCa("Client CA"), stranger = MakeCa("Other");
  Install(dir, "server", MakeCert(ca, {.common_name = "server"}));
  WriteFileAtomically(dir / "client-ca.pem", client_ca.cert_pem);
  TestServer t(TlsOptionsIn(dir, /*mutual=*/true));
  KeyPair good = MakeCert(client_ca, {.common_name = "worker-1", .alt_names = ""});
  KeyPair foreign = MakeCert(stranger, {.common_name = "worker-1", .alt_names = ""});
  KeyPair expired = MakeCert(
      client_ca,
      {.common_name = "worker-1", .alt_names = "", .not_before = -7200, .not_after = -3600});
  KeyPair future =
      MakeCert(client_ca,
               {.common_name = "worker-1", .alt_names = "", .not_before = 3600, .not_after = 7200});

  EXPECT_TRUE(Probe(TlsChannel(t.address(), {ca.cert_pem, good})).ok());
  for (const auto& [why, identity] :
       std::vector<std::pair<std::string, KeyPair>>{{"no client certificate", {}},
                                                    {"signed by another CA", foreign},
                                                    {"expired", expired},
                                                    {"not yet valid", future}}) {
    grpc::Status s = Probe(TlsChannel(t.address(), {ca.cert_pem, identity}));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << why << ": " << s.error_message();
  }
}

TEST(TlsTest, ARenewedCertificateIsServedWithoutARestartAndOpenConnectionsStay) {
  TempDir dir;
  KeyPair old_ca = MakeCa("Old CA"), new_ca = MakeCa("New CA");
  Install(dir, "server", MakeCert(old_ca, {.common_name = "server"}));
  TestServer t(TlsOptionsIn(dir, /*mutual=*/false));
  auto connected = TlsChannel(t.address(), {old_ca.cert_pem, {}});
  auto sessions = v1::Sessions::NewStub(connected);
  v1::OpenSessionRequest open;
  *open.mutable_ttl() = Millis(60'000);
  v1::OpenSessionResponse session;
  ASSERT_TRUE(sessions->Open(Context().get(), open, &session).ok());

  Install(dir, "server", MakeCert(new_ca, {.common_name = "server"}));
  // The files are re-read every second: a client trusting only the new CA
  // gets in within a few.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  grpc::Status fresh;
  do {
    fresh = Probe(TlsChannel(t.address(), {new_ca.cert_pem, {}}));
    if (fresh.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  } while (std::chrono::steady_clock::now() < deadline);
  ASSERT_TRUE(fresh.ok()) << "the new certificate was not served: " << fresh.error_message();
  // New connections no longer see the old certificate ...
  EXPECT_EQ(Probe(TlsChannel(t.address(), {old_ca.cert_pem, {}})).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // ... and the connection opened before the renewal still works.
  v1::KeepAliveRequest ka;
  ka.set_session_id(session.session_id());
  v1::KeepAliveResponse kar;
  grpc::Status s = sessions->KeepAlive(Context().get(), ka, &kar);
  EXPECT_TRUE(s.ok()) << s.error_message();
}

}  // namespace
}  // namespace baton::testing
