// Principals and permissions over real gRPC (service/security/auth.h,
// service/rpc/access.h): every method of every service, on both transports
// (unary or server-streaming calls, and operations on the session stream),
// is refused without credentials, refused to a principal without the access
// it needs on the name, and allowed with it; sessions and fencing tokens of
// one principal are useless to another; the files are re-read while the
// server runs.
#include "service/security/auth.h"

#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "baton/v1/stream.grpc.pb.h"
#include "integration/raw_call.h"
#include "integration/test_server.h"

namespace baton::testing {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using security::AccessPolicy;
using security::Sha256Hex;

// --- the files ---

TEST(AccessPolicyTest, ParsesRolesGrantsAndTokenHashes) {
  std::string tokens = absl::StrCat("# who  sha256\nalice ", Sha256Hex("a-token"), "\n\nbob\t",
                                    Sha256Hex("b-token"), "  # trailing\n");
  std::string policy =
      "grant alice team-a-rw reader   # roles may come later\n"
      "role team-a-rw write team-a/ shared/a/\n"
      "role reader read *\n"
      "role ops admin *\n"
      "grant bob ops\n"
      "grant anonymous reader\n";
  auto p = AccessPolicy::Parse(tokens, "tokens", policy, "policy");
  ASSERT_TRUE(p.ok()) << p.status();
  const security::Principal* alice = (*p)->ByTokenHash(Sha256Hex("a-token"));
  ASSERT_NE(alice, nullptr);
  EXPECT_EQ(alice->name, "alice");
  EXPECT_FALSE(alice->admin);
  EXPECT_TRUE(alice->Allows(security::Access::kWrite, "team-a/lock"));
  EXPECT_TRUE(alice->Allows(security::Access::kRead, "team-b/lock"));  // reader *
  EXPECT_FALSE(alice->Allows(security::Access::kWrite, "team-b/lock"));
  EXPECT_FALSE(alice->Allows(security::Access::kWrite, "team-a"));  // prefix, not a segment
  EXPECT_FALSE(alice->Allows(security::Access::kAdmin, "team-a/x"));
  const security::Principal* bob = (*p)->ByTokenHash(Sha256Hex("b-token"));
  ASSERT_NE(bob, nullptr);
  EXPECT_TRUE(bob->admin);
  EXPECT_TRUE(bob->Allows(security::Access::kWrite, "anything"));
  EXPECT_EQ((*p)->ByTokenHash(Sha256Hex("c-token")), nullptr);
  ASSERT_NE((*p)->Anonymous(), nullptr);
  EXPECT_FALSE((*p)->Anonymous()->Allows(security::Access::kWrite, "x"));
  EXPECT_EQ((*p)->principal_count(), 3u);
  EXPECT_EQ((*p)->token_count(), 2u);
}

TEST(AccessPolicyTest, LimitsApplyPerPrincipalWithADefault) {
  auto p = AccessPolicy::Parse("", "tokens",
                               "role r read x/\ngrant alice r\ngrant bob r\ngrant carol r\n"
                               "limit * sessions=10 waits=100\nlimit alice sessions=2\n"
                               "limit carol waits=0 sessions=0\ngrant dan r\nlimit dan names=7\n",
                               "policy");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)->ByName("alice")->max_sessions, 2);
  EXPECT_EQ((*p)->ByName("alice")->max_waits, 0);  // its own line replaces the default
  EXPECT_EQ((*p)->ByName("bob")->max_sessions, 10);
  EXPECT_EQ((*p)->ByName("bob")->max_waits, 100);
  EXPECT_EQ((*p)->ByName("carol")->max_sessions, 0);
  EXPECT_EQ((*p)->ByName("dan")->max_names, 7);
  EXPECT_EQ((*p)->ByName("dan")->max_sessions, 0);  // its own line replaces the default
  EXPECT_EQ((*p)->ByName("alice")->max_names, 0);
  for (const char* bad : {"limit alice\n", "limit alice sessions=-1\n", "limit alice cpu=3\n",
                          "limit alice waits=many\n", "limit alice names=-2\n"}) {
    EXPECT_FALSE(AccessPolicy::Parse("", "tokens", bad, "policy").ok()) << bad;
  }
}

TEST(AccessPolicyTest, AnonymousWithoutARoleIsRefused) {
  auto p = AccessPolicy::Parse("", "tokens", "role r read x/\ngrant alice r\n", "policy");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)->Anonymous(), nullptr);
}

TEST(AccessPolicyTest, ErrorsNameTheFileAndLine) {
  struct Case {
    std::string tokens, policy, expected;
  };
  std::string hash = Sha256Hex("t");
  for (const Case& c : std::vector<Case>{
           {"alice\n", "", "tokens:1: expected `PRINCIPAL SHA256-HEX`"},
           {"alice t0ken\n", "", "tokens:1: expected"},
           {absl::StrCat("\nanonymous ", hash, "\n"), "", "tokens:2: 'anonymous'"},
           {absl::StrCat("a ", hash, "\nb ", hash, "\n"), "", "tokens:2: the same token hash"},
           {"", "role r sudo x/\n", "policy:1: unknown access 'sudo'"},
           {"", "role r read\n", "policy:1: expected `role NAME ACCESS PREFIX...`"},
           {"", "\ngrant alice\n", "policy:2: expected `grant PRINCIPAL ROLE...`"},
           {"", "grant alice nope\n", "policy:1: no role named 'nope'"},
           {"", "allow alice\n", "policy:1: unknown statement 'allow'"},
       }) {
    auto p = AccessPolicy::Parse(c.tokens, "tokens", c.policy, "policy");
    ASSERT_FALSE(p.ok()) << c.expected;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(p.status().message().find(c.expected), std::string::npos) << p.status();
  }
}

// --- a server with a policy ---

// Principals: alice writes team-a/, rita reads team-a/, carol writes team-a/
// too (another owner on the same names), bob writes team-b/, root is admin.
class AuthServer {
 public:
  explicit AuthServer(const std::string& extra_policy = "") {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("baton-auth-", getpid(), "-", counter_++);
    std::filesystem::create_directories(dir_);
    WriteTokens({"alice", "rita", "carol", "bob", "root"});
    Write("policy",
          "role team-a-rw write team-a/\n"
          "role team-a-ro read team-a/\n"
          "role team-b-rw write team-b/\n"
          "role ops admin *\n"
          "grant alice team-a-rw\n"
          "grant carol team-a-rw\n"
          "grant rita team-a-ro\n"
          "grant bob team-b-rw\n"
          "grant root ops\n"
          "grant dave team-a-rw\n" +
              extra_policy);
    rpc::ServerOptions o = TestServer::DefaultOptions();
    o.auth.policy_file = (dir_ / "policy").string();
    o.auth.tokens_file = (dir_ / "tokens").string();
    o.auth.reload_interval = std::chrono::seconds(1);
    server = std::make_unique<TestServer>(o);
  }
  ~AuthServer() {
    server.reset();
    std::filesystem::remove_all(dir_);
  }

  // Each principal's token is "<name>-token".
  void WriteTokens(const std::vector<std::string>& names) {
    std::string text;
    for (const auto& n : names) absl::StrAppend(&text, n, " ", Sha256Hex(n + "-token"), "\n");
    // Write and rename, as an operator should: the reload never sees half.
    Write("tokens.new", text);
    std::filesystem::rename(dir_ / "tokens.new", dir_ / "tokens");
  }

  std::unique_ptr<TestServer> server;

 private:
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }
  static inline int counter_ = 0;
  std::filesystem::path dir_;
};

// A context with `who`'s token ("" for none) and a short deadline.
std::unique_ptr<grpc::ClientContext> As(const std::string& who, int64_t deadline_ms = 2'000) {
  auto ctx = Context(deadline_ms);
  if (!who.empty()) ctx->AddMetadata("authorization", absl::StrCat("Bearer ", who, "-token"));
  return ctx;
}

// Fills the names a request acts on with names under team-a/.
void FillNames(Message* m) {
  const Descriptor* d = m->GetDescriptor();
  const auto* r = m->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const std::string& n = f->name();
    if (f->type() == FieldDescriptor::TYPE_STRING && !f->is_repeated()) {
      if (n == "name" || n == "lock" || n == "queue" || n == "prefix") {
        r->SetString(m, f, "team-a/x");
      } else if (n == "task_id") {
        r->SetString(m, f, "team-a/x#1");
      }
    } else if (f->type() == FieldDescriptor::TYPE_STRING && n == "task_ids") {
      r->AddString(m, f, "team-a/x#1");
    }
  }
  if (d->full_name() == "baton.v1.ScheduleTimerRequest") {
    auto& t = static_cast<v1::ScheduleTimerRequest&>(*m);
    t.mutable_action()->mutable_set_event()->set_name("team-a/fired");
    *t.mutable_after() = Millis(60'000);
  }
}

enum class Needs { kKnown, kRead, kWrite, kAdmin };

// What each method needs, as the API documents it (the server's own table is
// in service/rpc/access.cc; this one is written independently).
Needs NeedsOf(const std::string& method) {
  static const std::set<std::string> kKnown = {
      "baton.v1.Sessions.Open",     "baton.v1.Sessions.KeepAlive", "baton.v1.Sessions.Close",
      "baton.v1.Sessions.Describe", "baton.v1.Admin.ServerInfo",   "baton.v1.Admin.ListMembers"};
  static const std::set<std::string> kRead = {"baton.v1.Admin.List",    "baton.v1.Admin.Describe",
                                              "baton.v1.Events.Wait",   "baton.v1.Events.Watch",
                                              "baton.v1.Futures.Await", "baton.v1.Queues.Join",
                                              "baton.v1.Tasks.Await",   "baton.v1.Tasks.Wait"};
  if (kKnown.contains(method)) return Needs::kKnown;
  if (kRead.contains(method)) return Needs::kRead;
  static const std::set<std::string> kAdmin = {
      "baton.v1.Admin.SaveSnapshot", "baton.v1.Admin.AddMember", "baton.v1.Admin.RemoveMember",
      "baton.v1.Admin.TransferLeadership"};
  if (kAdmin.contains(method)) return Needs::kAdmin;
  return Needs::kWrite;
}

// Whether principal `who` may call a method that needs `needs` on team-a/.
bool Allowed(const std::string& who, Needs needs) {
  if (who.empty()) return false;
  if (who == "root") return true;
  switch (needs) {
    case Needs::kKnown:
      return true;
    case Needs::kRead:
      return who == "alice" || who == "rita";
    case Needs::kWrite:
      return who == "alice";
    case Needs::kAdmin:
      return false;
  }
  return false;
}

bool Refused(grpc::StatusCode c) {
  return c == grpc::StatusCode::UNAUTHENTICATED || c == grpc::StatusCode::PERMISSION_DENIED;
}

const std::vector<const char*> kServices = {"Sessions", "Locks",   "Semaphores", "Events",
                                            "Queues",   "Futures", "Barriers",   "Conditions",
                                            "Timers",   "Tasks",   "Admin"};

TEST(AuthTest, EveryMethodOverCallsChecksThePrincipal) {
  AuthServer a;
  TestServer& t = *a.server;
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  int methods = 0;
  for (const char* service_name : kServices) {
    const auto* service = pool->FindServiceByName(absl::StrCat("baton.v1.", service_name));
    ASSERT_NE(service, nullptr);
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* m = service->method(i);
      if (m->client_streaming()) continue;  // the two request streams: below
      ++methods;
      std::unique_ptr<Message> request(google::protobuf::MessageFactory::generated_factory()
                                           ->GetPrototype(m->input_type())
                                           ->New());
      FillNames(request.get());
      std::string bytes = request->SerializeAsString();
      std::string path = absl::StrCat("/", service->full_name(), "/", m->name());
      Needs needs = NeedsOf(m->full_name());
      for (const std::string who : {"", "bob", "rita", "alice", "root"}) {
        auto ctx = As(who, 300);
        grpc::Status s = m->server_streaming() ? RawServerStream(t.channel, path, bytes, ctx.get())
                                               : RawUnary(t.channel, path, bytes, ctx.get());
        if (who.empty()) {
          EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << path;
        } else if (Allowed(who, needs)) {
          EXPECT_FALSE(Refused(s.error_code()))
              << path << " as " << who << ": " << s.error_message();
        } else {
          EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED)
              << path << " as " << who << ": " << s.error_message();
          EXPECT_NE(s.error_message().find(who), std::string::npos) << s.error_message();
        }
      }
    }
  }
  EXPECT_GE(methods, 43);
}

// Opens a session stream as `who`; the welcome's session id (0 if refused,
// with the status in *refused).
struct StreamAs {
  StreamAs(TestServer& t, const std::string& who, uint64_t resume = 0)
      : ctx(As(who, 10'000)), stub(v1::Stream::NewStub(t.channel)) {
    stream = stub->Connect(ctx.get());
    v1::StreamRequest hello;
    if (resume != 0) {
      hello.mutable_hello()->set_session_id(resume);
    } else {
      *hello.mutable_hello()->mutable_ttl() = Millis(30'000);
    }
    stream->Write(hello);
    v1::StreamResponse first;
    if (stream->Read(&first) && first.has_welcome()) {
      session = first.welcome().session_id();
    } else {
      stream->WritesDone();
      status = stream->Finish();
    }
  }
  // Sends `ops`, and with `cancel` a cancellation of each (so that a wait
  // ends at once), and returns each one's result code by id.
  std::map<uint64_t, int> Run(std::vector<v1::Operation> ops, bool cancel = true) {
    v1::StreamRequest req;
    for (auto& op : ops) {
      if (cancel) req.add_cancel(op.id());
      *req.add_ops() = std::move(op);
    }
    size_t want = static_cast<size_t>(req.ops_size());
    EXPECT_TRUE(stream->Write(req));
    std::map<uint64_t, int> codes;
    v1::StreamResponse resp;
    while (codes.size() < want && stream->Read(&resp)) {
      for (const auto& r : resp.results()) codes[r.id()] = r.code();
    }
    return codes;
  }
  ~StreamAs() {
    if (session != 0) {
      stream->WritesDone();
      stream->Finish();
    }
  }

  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<v1::Stream::Stub> stub;
  std::unique_ptr<grpc::ClientReaderWriter<v1::StreamRequest, v1::StreamResponse>> stream;
  uint64_t session = 0;
  grpc::Status status;
};

TEST(AuthTest, EveryOperationOnTheStreamChecksThePrincipal) {
  AuthServer a;
  TestServer& t = *a.server;
  {
    StreamAs none(t, "");
    EXPECT_EQ(none.session, 0u);
    EXPECT_EQ(none.status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << none.status.error_message();
  }
  const auto* oneof = v1::Operation::descriptor()->FindOneofByName("op");
  ASSERT_NE(oneof, nullptr);
  // The method each operation field runs: the method whose request type it
  // carries (Notify and NotifyAll share one; both need write).
  std::map<const Descriptor*, std::string> method_of;
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const char* service_name : kServices) {
    const auto* service = pool->FindServiceByName(absl::StrCat("baton.v1.", service_name));
    for (int i = 0; i < service->method_count(); ++i) {
      method_of.emplace(service->method(i)->input_type(), service->method(i)->full_name());
    }
  }
  for (const std::string who : {"bob", "rita", "alice", "root"}) {
    StreamAs s(t, who);
    ASSERT_NE(s.session, 0u) << who << ": " << s.status.error_message();
    std::vector<v1::Operation> ops;
    std::map<uint64_t, std::string> field_of;
    for (int i = 0; i < oneof->field_count(); ++i) {
      const FieldDescriptor* f = oneof->field(i);
      v1::Operation op;
      op.set_id(static_cast<uint64_t>(f->number()));
      Message* request = op.GetReflection()->MutableMessage(&op, f);
      FillNames(request);
      field_of[op.id()] = f->name();
      ops.push_back(std::move(op));
    }
    auto codes = s.Run(std::move(ops));
    ASSERT_EQ(codes.size(), field_of.size()) << who;
    for (const auto& [id, field] : field_of) {
      const FieldDescriptor* f =
          v1::Operation::descriptor()->FindFieldByNumber(static_cast<int>(id));
      auto m = method_of.find(f->message_type());
      ASSERT_NE(m, method_of.end()) << field;
      auto code = static_cast<grpc::StatusCode>(codes[id]);
      if (Allowed(who, NeedsOf(m->second))) {
        EXPECT_FALSE(Refused(code)) << field << " as " << who << ": " << code;
      } else {
        EXPECT_EQ(code, grpc::StatusCode::PERMISSION_DENIED) << field << " as " << who;
      }
    }
  }
}

uint64_t OpenAs(TestServer& t, const std::string& who) {
  v1::OpenSessionRequest req;
  *req.mutable_ttl() = Millis(30'000);
  v1::OpenSessionResponse resp;
  grpc::Status s = t.sessions->Open(As(who).get(), req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp.session_id();
}

grpc::StatusCode KeepAliveAs(TestServer& t, const std::string& who, uint64_t session) {
  v1::KeepAliveRequest req;
  req.set_session_id(session);
  v1::KeepAliveResponse resp;
  return t.sessions->KeepAlive(As(who).get(), req, &resp).error_code();
}

TEST(AuthTest, AnotherPrincipalsSessionIsUseless) {
  AuthServer a;
  TestServer& t = *a.server;
  uint64_t alices = OpenAs(t, "alice");
  ASSERT_NE(alices, 0u);
  // Bob knows the id: none of it works for him, on his own names either.
  EXPECT_EQ(KeepAliveAs(t, "bob", alices), grpc::StatusCode::PERMISSION_DENIED);
  {
    v1::DescribeSessionRequest req;
    req.set_session_id(alices);
    v1::DescribeSessionResponse resp;
    EXPECT_EQ(t.sessions->Describe(As("bob").get(), req, &resp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    v1::AcquireLockRequest req;
    req.set_name("team-b/l");
    req.set_session_id(alices);
    v1::AcquireLockResponse resp;
    grpc::Status s = t.locks->Acquire(As("bob").get(), req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_NE(s.error_message().find("belongs to another principal"), std::string::npos)
        << s.error_message();
  }
  {
    StreamAs resume(t, "bob", alices);
    EXPECT_EQ(resume.session, 0u);
    EXPECT_EQ(resume.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    // A stream of his own, naming her session in an operation.
    StreamAs own(t, "bob");
    ASSERT_NE(own.session, 0u);
    v1::Operation op;
    op.set_id(1);
    op.mutable_acquire_lock()->set_name("team-b/l");
    op.mutable_acquire_lock()->set_session_id(alices);
    EXPECT_EQ(own.Run({op})[1], static_cast<int>(grpc::StatusCode::PERMISSION_DENIED));
  }
  {
    auto ctx = As("bob");
    auto stream = t.sessions->KeepAliveStream(ctx.get());
    v1::KeepAliveRequest req;
    req.set_session_id(alices);
    stream->Write(req);
    v1::KeepAliveResponse resp;
    EXPECT_FALSE(stream->Read(&resp));
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    v1::CloseSessionRequest req;
    req.set_session_id(alices);
    v1::CloseSessionResponse resp;
    EXPECT_EQ(t.sessions->Close(As("bob").get(), req, &resp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  // Her session is untouched; she and an admin may use it.
  EXPECT_EQ(KeepAliveAs(t, "alice", alices), grpc::StatusCode::OK);
  EXPECT_EQ(KeepAliveAs(t, "root", alices), grpc::StatusCode::OK);
  StreamAs resumed(t, "alice", alices);
  EXPECT_EQ(resumed.session, alices);
  // An id nobody opened is NOT_FOUND, as without principals.
  EXPECT_EQ(KeepAliveAs(t, "alice", alices + 1'000'000), grpc::StatusCode::NOT_FOUND);
}

TEST(AuthTest, AFencingTokenAloneReleasesNothing) {
  AuthServer a;
  TestServer& t = *a.server;
  uint64_t alices = OpenAs(t, "alice");
  v1::AcquireLockRequest acquire;
  acquire.set_name("team-a/l");
  acquire.set_session_id(alices);
  v1::AcquireLockResponse held;
  ASSERT_TRUE(t.locks->Acquire(As("alice").get(), acquire, &held).ok());
  // Carol may write team-a/ too, and learns the token and the session id:
  // neither gets her the lock. (Describe does not show them to her.)
  {
    v1::DescribeRequest req;
    req.set_name("team-a/l");
    v1::DescribeResponse as_carol, as_alice, as_root;
    ASSERT_TRUE(t.admin->Describe(As("carol").get(), req, &as_carol).ok());
    ASSERT_TRUE(t.admin->Describe(As("alice").get(), req, &as_alice).ok());
    ASSERT_TRUE(t.admin->Describe(As("root").get(), req, &as_root).ok());
    ASSERT_EQ(as_carol.holders_size(), 1);
    EXPECT_EQ(as_carol.holders(0).token(), 0u);
    EXPECT_EQ(as_carol.holders(0).session_id(), 0u);
    EXPECT_EQ(as_alice.holders(0).token(), held.token());
    EXPECT_EQ(as_alice.holders(0).session_id(), alices);
    EXPECT_EQ(as_root.holders(0).token(), held.token());
  }
  v1::ReleaseLockRequest release;
  release.set_name("team-a/l");
  release.set_token(held.token());
  v1::ReleaseLockResponse resp;
  release.set_session_id(alices);
  EXPECT_EQ(t.locks->Release(As("carol").get(), release, &resp).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  release.set_session_id(0);
  EXPECT_EQ(t.locks->Release(As("carol").get(), release, &resp).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  uint64_t carols = OpenAs(t, "carol");
  release.set_session_id(carols);
  EXPECT_EQ(t.locks->Release(As("carol").get(), release, &resp).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  // Still hers.
  release.set_session_id(alices);
  EXPECT_TRUE(t.locks->Release(As("alice").get(), release, &resp).ok());
}

// Handles owned by a lease and no session: the principal that got them is
// recorded with them, so another principal with write access to the names,
// knowing the token, receipt or attempt (all predictable), still cannot use
// them. An admin can.
TEST(AuthTest, HandlesWithoutASessionAreBoundToTheirPrincipal) {
  AuthServer a;
  TestServer& t = *a.server;
  auto code = [](const grpc::Status& s) { return s.error_code(); };
  constexpr auto kDenied = grpc::StatusCode::PERMISSION_DENIED;
  // A leased lock.
  v1::AcquireLockRequest acquire;
  acquire.set_name("team-a/leased");
  *acquire.mutable_ttl() = Millis(60'000);
  v1::AcquireLockResponse held;
  ASSERT_TRUE(t.locks->Acquire(As("alice").get(), acquire, &held).ok());
  v1::ReleaseLockRequest release;
  release.set_name("team-a/leased");
  release.set_token(held.token());
  v1::ReleaseLockResponse released;
  grpc::Status s = t.locks->Release(As("carol").get(), release, &released);
  EXPECT_EQ(code(s), kDenied) << s.error_message();
  EXPECT_NE(s.error_message().find("belongs to another principal"), std::string::npos)
      << s.error_message();
  v1::RefreshLockRequest refresh;
  refresh.set_name("team-a/leased");
  refresh.set_token(held.token());
  *refresh.mutable_ttl() = Millis(60'000);
  v1::RefreshLockResponse refreshed;
  EXPECT_EQ(code(t.locks->Refresh(As("carol").get(), refresh, &refreshed)), kDenied);
  EXPECT_TRUE(t.locks->Refresh(As("alice").get(), refresh, &refreshed).ok());
  EXPECT_TRUE(t.locks->Release(As("root").get(), release, &released).ok());

  // An item in flight under a visibility timeout.
  v1::PutRequest put;
  put.set_name("team-a/q");
  put.add_items()->set_text("job");
  v1::PutResponse put_resp;
  ASSERT_TRUE(t.queues->Put(As("alice").get(), put, &put_resp).ok());
  v1::GetRequest get;
  get.set_name("team-a/q");
  *get.mutable_ttl() = Millis(60'000);
  v1::GetResponse got;
  ASSERT_TRUE(t.queues->Get(As("alice").get(), get, &got).ok());
  ASSERT_EQ(got.items_size(), 1);
  v1::AckRequest ack;
  ack.set_name("team-a/q");
  ack.add_receipts(got.items(0).receipt());
  v1::AckResponse acked;
  EXPECT_EQ(code(t.queues->Ack(As("carol").get(), ack, &acked)), kDenied);
  v1::NackRequest nack;
  nack.set_name("team-a/q");
  nack.add_receipts(got.items(0).receipt());
  v1::NackResponse nacked;
  EXPECT_EQ(code(t.queues->Nack(As("carol").get(), nack, &nacked)), kDenied);
  ASSERT_TRUE(t.queues->Ack(As("alice").get(), ack, &acked).ok());
  EXPECT_EQ(acked.acked(), 1u);

  // A running task attempt.
  v1::SubmitTaskRequest submit;
  submit.set_queue("team-a/work");
  submit.set_text("job");
  v1::SubmitTaskResponse submitted;
  ASSERT_TRUE(t.tasks->Submit(As("carol").get(), submit, &submitted).ok());
  v1::TakeTaskRequest take;
  take.set_queue("team-a/work");
  *take.mutable_ttl() = Millis(60'000);
  v1::TakeTaskResponse taken;
  ASSERT_TRUE(t.tasks->Take(As("alice").get(), take, &taken).ok());
  v1::TaskHeartbeatRequest beat;
  beat.set_task_id(taken.task_id());
  beat.set_attempt(taken.attempt());
  v1::TaskHeartbeatResponse beaten;
  EXPECT_EQ(code(t.tasks->Heartbeat(As("carol").get(), beat, &beaten)), kDenied);
  v1::CompleteTaskRequest complete;
  complete.set_task_id(taken.task_id());
  complete.set_attempt(taken.attempt());
  complete.set_text("forged");
  v1::CompleteTaskResponse completed;
  EXPECT_EQ(code(t.tasks->Complete(As("carol").get(), complete, &completed)), kDenied);
  complete.set_text("done");
  EXPECT_TRUE(t.tasks->Complete(As("alice").get(), complete, &completed).ok());
}

// The owner of a leased holding is state: it survives a restart.
TEST(AuthTest, HandleOwnersSurviveARestart) {
  AuthServer a;
  TestServer& t = *a.server;
  if (t.data_dir().empty()) GTEST_SKIP() << "in memory: nothing survives a restart";
  v1::AcquireLockRequest acquire;
  acquire.set_name("team-a/leased");
  *acquire.mutable_ttl() = Millis(60'000);
  v1::AcquireLockResponse held;
  ASSERT_TRUE(t.locks->Acquire(As("alice").get(), acquire, &held).ok());
  t.Restart();
  v1::ReleaseLockRequest release;
  release.set_name("team-a/leased");
  release.set_token(held.token());
  v1::ReleaseLockResponse released;
  EXPECT_EQ(t.locks->Release(As("carol").get(), release, &released).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(t.locks->Release(As("alice").get(), release, &released).ok());
}

TEST(AuthTest, CredentialsThatDoNotCheckOut) {
  AuthServer a;
  TestServer& t = *a.server;
  v1::ServerInfoRequest req;
  v1::ServerInfoResponse resp;
  for (const std::string& header :
       {std::string("Bearer wrong-token"), std::string("Basic YWxpY2U6eA=="),
        std::string("Bearer "), std::string("alice-token")}) {
    auto ctx = Context();
    ctx->AddMetadata("authorization", header);
    grpc::Status s = t.admin->ServerInfo(ctx.get(), req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << header;
  }
  // The scheme's case does not matter (RFC 7235).
  auto ctx = Context();
  ctx->AddMetadata("authorization", "bearer alice-token");
  EXPECT_TRUE(t.admin->ServerInfo(ctx.get(), req, &resp).ok());
}

TEST(AuthTest, TokensFileIsReloadedWhileClientsStayConnected) {
  AuthServer a;
  TestServer& t = *a.server;
  uint64_t alices = OpenAs(t, "alice");
  StreamAs open(t, "alice");
  ASSERT_NE(open.session, 0u);
  // dave has a role but no token yet.
  EXPECT_EQ(KeepAliveAs(t, "dave", alices), grpc::StatusCode::UNAUTHENTICATED);
  a.WriteTokens({"alice", "dave"});  // also drops bob's
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  grpc::StatusCode dave = grpc::StatusCode::UNAUTHENTICATED;
  while (dave == grpc::StatusCode::UNAUTHENTICATED && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    uint64_t none = 0;
    v1::AcquireLockRequest req;
    req.set_name("team-a/reload");
    req.set_session_id(none);
    *req.mutable_ttl() = Millis(1'000);
    v1::AcquireLockResponse resp;
    dave = t.locks->Acquire(As("dave").get(), req, &resp).error_code();
  }
  EXPECT_EQ(dave, grpc::StatusCode::OK);
  v1::ServerInfoRequest req;
  v1::ServerInfoResponse resp;
  EXPECT_EQ(t.admin->ServerInfo(As("bob").get(), req, &resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // What was open stays open and keeps its principal.
  v1::Operation op;
  op.set_id(7);
  op.mutable_describe_session()->set_session_id(open.session);
  EXPECT_EQ(open.Run({op}, /*cancel=*/false)[7], 0);
  EXPECT_EQ(KeepAliveAs(t, "alice", alices), grpc::StatusCode::OK);
}

TEST(AuthTest, PerPrincipalLimitsAreResourceExhausted) {
  AuthServer a("limit alice sessions=2 waits=3\n");
  TestServer& t = *a.server;
  // Every session of a principal with a sessions limit is homed on one
  // shard, whose state machine counts them: the cap is exact, even for
  // opens in parallel.
  v1::OpenSessionRequest open;
  *open.mutable_ttl() = Millis(30'000);
  std::vector<uint64_t> mine(8, 0);
  std::vector<grpc::Status> outcome(8);
  {
    std::vector<std::thread> openers;
    for (int i = 0; i < 8; ++i) {
      openers.emplace_back([&, i] {
        v1::OpenSessionResponse opened;
        outcome[i] = t.sessions->Open(As("alice").get(), open, &opened);
        if (outcome[i].ok()) mine[i] = opened.session_id();
      });
    }
    for (auto& th : openers) th.join();
  }
  std::erase(mine, 0u);
  EXPECT_EQ(mine.size(), 2u);
  // (Opens in parallel may also meet her limit of 3 calls in flight; at
  // least 3 got through that, so at least one met the sessions limit.)
  int over_sessions = 0;
  for (const grpc::Status& s : outcome) {
    if (s.ok()) continue;
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
    if (s.error_message().find("principal 'alice' has 2 open sessions") != std::string::npos) {
      ++over_sessions;
    } else {
      EXPECT_NE(s.error_message().find("in flight"), std::string::npos) << s.error_message();
    }
  }
  EXPECT_GE(over_sessions, 1);
  // A stream's new session counts the same.
  {
    StreamAs stream(t, "alice");
    EXPECT_EQ(stream.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_EQ(stream.session, 0u);
  }
  EXPECT_NE(OpenAs(t, "carol"), 0u);  // another principal is not held back
  // Closing one of hers makes room for one, at once.
  v1::CloseSessionRequest close;
  close.set_session_id(mine.back());
  v1::CloseSessionResponse closed;
  ASSERT_TRUE(t.sessions->Close(As("alice").get(), close, &closed).ok());
  v1::OpenSessionResponse opened;
  ASSERT_TRUE(t.sessions->Open(As("alice").get(), open, &opened).ok());
  EXPECT_EQ(t.sessions->Open(As("alice").get(), open, &opened).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);

  // Three waits in flight are alice's limit: a fourth call of hers is
  // refused until they end; carol's calls are not.
  std::vector<std::thread> waits;
  for (int i = 0; i < 3; ++i) {
    waits.emplace_back([&t] {
      v1::WaitEventRequest req;
      req.set_name("team-a/gate");
      v1::WaitEventResponse resp;
      EXPECT_TRUE(t.events->Wait(As("alice", 10'000).get(), req, &resp).ok());
    });
  }
  v1::DescribeRequest describe;
  describe.set_name("team-a/gate");
  v1::DescribeResponse state;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline &&
         !(t.admin->Describe(As("root").get(), describe, &state).ok() && state.waiters() == 3)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(state.waiters(), 3u);
  v1::ServerInfoRequest info;
  v1::ServerInfoResponse about;
  grpc::Status over = t.admin->ServerInfo(As("alice").get(), info, &about);
  EXPECT_EQ(over.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << over.error_message();
  {
    StreamAs stream(t, "alice");  // the stream itself is a call in flight
    EXPECT_EQ(stream.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  EXPECT_TRUE(t.admin->ServerInfo(As("carol").get(), info, &about).ok());
  v1::SetEventRequest set;
  set.set_name("team-a/gate");
  v1::SetEventResponse woke;
  ASSERT_TRUE(t.events->Set(As("carol").get(), set, &woke).ok());
  for (auto& w : waits) w.join();
  EXPECT_TRUE(t.admin->ServerInfo(As("alice").get(), info, &about).ok());
  // On a stream (resuming a session: she has all she may open): the stream
  // is one, each operation one more.
  StreamAs stream(t, "alice", opened.session_id());
  ASSERT_NE(stream.session, 0u) << stream.status.error_message();
  std::vector<v1::Operation> ops(3);
  for (int i = 0; i < 3; ++i) {
    ops[i].set_id(static_cast<uint64_t>(i + 1));
    ops[i].mutable_wait_event()->set_name("team-a/other-gate");
  }
  auto codes = stream.Run(ops);  // started in order, then cancelled
  EXPECT_EQ(codes[1], static_cast<int>(grpc::StatusCode::CANCELLED));
  EXPECT_EQ(codes[2], static_cast<int>(grpc::StatusCode::CANCELLED));
  EXPECT_EQ(codes[3], static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
}

TEST(AuthTest, PerPrincipalNamesLimitIsResourceExhausted) {
  // Each shard lets a principal create its share, ceil(limit / shards), of
  // the names that hash to it; so a principal is refused at the latest at
  // its limit, and earlier when its names hash unevenly.
  AuthServer a("limit alice names=4\n");
  TestServer& t = *a.server;
  auto set = [&](const std::string& who, const std::string& name) {
    v1::SetEventRequest req;
    req.set_name(name);
    v1::SetEventResponse resp;
    return t.events->Set(As(who).get(), req, &resp);
  };
  std::vector<std::string> mine;
  grpc::Status refused;
  for (int i = 0; i < 20 && refused.ok(); ++i) {
    std::string name = absl::StrCat("team-a/e", i);
    refused = set("alice", name);
    if (refused.ok()) mine.push_back(name);
  }
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_NE(refused.error_message().find("names limit (4"), std::string::npos)
      << refused.error_message();
  EXPECT_GE(mine.size(), 2u);
  EXPECT_LE(mine.size(), 4u);
  EXPECT_TRUE(set("carol", "team-a/carols").ok());  // another principal is not held back
  EXPECT_TRUE(set("alice", mine[0]).ok());          // names she has are not new
  // Clearing an event reclaims it, which frees its place on its shard.
  v1::ClearEventRequest clear;
  clear.set_name(mine[0]);
  v1::ClearEventResponse cleared;
  ASSERT_TRUE(t.events->Clear(As("alice").get(), clear, &cleared).ok());
  EXPECT_TRUE(set("alice", mine[0]).ok());
}

// A Consume stream naming a session opened a moment before: its shard may
// not have heard of the session yet and asks the session's home shard. The
// answer must reach the check, not the stream's own inbox of deliveries (it
// did, and the stream hung before consuming anything).
TEST(AuthTest, ConsumeRightAfterOpenGetsItsItems) {
  AuthServer a;
  TestServer& t = *a.server;
  for (int i = 0; i < 20; ++i) {
    uint64_t session = OpenAs(t, "alice");
    v1::ConsumeRequest consume;
    consume.set_name(absl::StrCat("team-a/consume-", i));
    consume.set_session_id(session);
    auto ctx = As("alice", 10'000);
    auto reader = t.queues->Consume(ctx.get(), consume);
    v1::PutRequest put;
    put.set_name(consume.name());
    put.add_items()->set_text("job");
    v1::PutResponse put_resp;
    ASSERT_TRUE(t.queues->Put(As("alice").get(), put, &put_resp).ok());
    v1::ConsumeResponse got;
    ASSERT_TRUE(reader->Read(&got)) << "round " << i << ": " << reader->Finish().error_message();
    ASSERT_EQ(got.items_size(), 1);
    EXPECT_EQ(got.items(0).text(), "job");
    ctx->TryCancel();
    reader->Finish();
  }
}

TEST(AuthTest, OwnersSurviveARestart) {
  AuthServer a;
  TestServer& t = *a.server;
  if (t.data_dir().empty()) GTEST_SKIP() << "in memory: nothing survives a restart";
  uint64_t alices = OpenAs(t, "alice");
  t.Restart();
  EXPECT_EQ(KeepAliveAs(t, "bob", alices), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(KeepAliveAs(t, "alice", alices), grpc::StatusCode::OK);
}

}  // namespace
}  // namespace baton::testing
