#include "integration/test_server.h"

namespace baton::testing {

rpc::ServerOptions TestServer::DefaultOptions() {
  rpc::ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.shards = 2;
  o.shutdown_grace = 500 * kMillisecond;
  o.requests_per_method = 8;
  return o;
}

TestServer::TestServer(rpc::ServerOptions options) {
  auto s = rpc::Server::Start(options);
  EXPECT_TRUE(s.ok()) << s.status();
  server_ = std::move(*s);
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

TestServer::~TestServer() { server_.reset(); }

std::shared_ptr<grpc::Channel> TestServer::NewChannel() const {
  static std::atomic<int> n{0};
  grpc::ChannelArguments args;
  args.SetInt("baton.test.channel", n++);  // distinct args: a connection of its own
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args);
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
