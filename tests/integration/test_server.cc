#include "integration/test_server.h"

#include <stdlib.h>

#include <chrono>
#include <cstring>
#include <filesystem>

namespace baton::testing {

rpc::ServerOptions TestServer::DefaultOptions() {
  rpc::ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.shards = 2;
  o.shutdown_grace = 500 * kMillisecond;
  o.requests_per_method = 8;
  const char* durability = getenv("BATON_DURABILITY");
  if (durability == nullptr || std::strcmp(durability, "none") != 0) {
    o.durability = rpc::Durability::kLocal;
  }
  return o;
}

TestServer::TestServer(rpc::ServerOptions options) : options_(std::move(options)) {
  if (options_.durability == rpc::Durability::kLocal && options_.data_dir.empty()) {
    std::string pattern = (std::filesystem::temp_directory_path() / "baton-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp: " << strerror(errno);
    own_data_dir_ = options_.data_dir = pattern;
  }
  auto s = rpc::Server::Start(options_);
  EXPECT_TRUE(s.ok()) << s.status();
  server_ = std::move(*s);
  Connect();
}

void TestServer::Restart() {
  server_.reset();
  options_.listen = "127.0.0.1:0";
  auto s = rpc::Server::Start(options_);
  ASSERT_TRUE(s.ok()) << s.status();
  server_ = std::move(*s);
  Connect();
}

void TestServer::Connect() {
  channel = NewChannel();
  sessions = v1::Sessions::NewStub(channel);
  locks = v1::Locks::NewStub(channel);
  semaphores = v1::Semaphores::NewStub(channel);
  events = v1::Events::NewStub(channel);
  queues = v1::Queues::NewStub(channel);
  futures = v1::Futures::NewStub(channel);
  barriers = v1::Barriers::NewStub(channel);
  conditions = v1::Conditions::NewStub(channel);
  timers = v1::Timers::NewStub(channel);
  tasks = v1::Tasks::NewStub(channel);
  admin = v1::Admin::NewStub(channel);
}

TestServer::~TestServer() {
  server_.reset();
  if (!own_data_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(own_data_dir_, ec);
  }
}

std::shared_ptr<grpc::Channel> TestServer::NewChannel() const {
  static std::atomic<int> n{0};
  grpc::ChannelArguments args;
  args.SetInt("baton.test.channel", n++);  // distinct args: a connection of its own
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args);
  // Connected before the first call: gRPC 1.51's TCP client reads errno
  // after calls that may overwrite it, so a connect that is merely in
  // progress is now and then taken for a failure ("connect failed ... No
  // such file or directory", errno 2, seen in race_cancel), and the
  // channel sits in TRANSIENT_FAILURE for its 1 s backoff, failing every
  // call made without wait_for_ready. Fixed upstream by grpc/grpc#35064
  // (1.61). Waiting here rides out the backoff; the calls under test then
  // see only what the server does.
  channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return channel;
}

google::protobuf::Duration Millis(int64_t ms) {
  google::protobuf::Duration d;
  d.set_seconds(ms / 1000);
  d.set_nanos(static_cast<int32_t>((ms % 1000) * 1'000'000));
  return d;
}

std::unique_ptr<grpc::ClientContext> Context(int64_t deadline_ms) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
  return ctx;
}

uint64_t OpenSession(TestServer& t, int64_t ttl_ms) {
  v1::OpenSessionRequest req;
  *req.mutable_ttl() = Millis(ttl_ms);
  v1::OpenSessionResponse resp;
  grpc::Status s = t.sessions->Open(Context().get(), req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp.session_id();
}

}  // namespace baton::testing
