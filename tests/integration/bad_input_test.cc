// Bad input over real gRPC: each gets a precise status, never a crash.
#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/generic_stub.h>

#include "absl/strings/str_cat.h"
#include "integration/test_server.h"

namespace baton::testing {
namespace {

grpc::StatusCode LockCode(TestServer& t, v1::AcquireLockRequest req) {
  v1::AcquireLockResponse resp;
  return t.locks->Acquire(Context().get(), req, &resp).error_code();
}

v1::AcquireLockRequest Lease(const std::string& name) {
  v1::AcquireLockRequest r;
  r.set_name(name);
  *r.mutable_ttl() = Millis(10'000);
  return r;
}

// Calls `method` ("/baton.v1.Locks/Acquire") with `bytes` as the request.
grpc::Status CallWithBytes(TestServer& t, const std::string& method, const std::string& bytes) {
  grpc::GenericStub stub(t.channel);
  grpc::CompletionQueue cq;
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  auto ctx = Context(5'000);
  auto call = stub.PrepareUnaryCall(ctx.get(), method, request, &cq);
  call->StartCall();
  grpc::ByteBuffer response;
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  EXPECT_TRUE(cq.Next(&tag, &ok));
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

// Every unary method of every service, sent bytes that are not protobuf
// (a field tag whose varint never ends), answers INVALID_ARGUMENT naming
// the request type: never INTERNAL, never a crash.
TEST(BadInputTest, UndecodableRequestBytesAreInvalidArgumentOnEveryUnaryMethod) {
  TestServer t;
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  const std::string garbage("\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11);
  int methods = 0;
  for (const char* name : {"Sessions", "Locks", "Semaphores", "Events", "Queues", "Futures",
                           "Barriers", "Conditions", "Timers", "Tasks", "Admin"}) {
    const auto* service = pool->FindServiceByName(absl::StrCat("baton.v1.", name));
    ASSERT_NE(service, nullptr) << name;
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* m = service->method(i);
      if (m->client_streaming() || m->server_streaming()) continue;
      ++methods;
      std::string path = absl::StrCat("/", service->full_name(), "/", m->name());
      grpc::Status s = CallWithBytes(t, path, garbage);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
          << path << ": " << s.error_message();
      EXPECT_NE(s.error_message().find(m->input_type()->full_name()), std::string::npos)
          << path << ": " << s.error_message();
    }
  }
  EXPECT_GE(methods, 40);
  // The server still serves, and a valid request on the same channel works.
  v1::AcquireLockResponse resp;
  EXPECT_TRUE(t.locks->Acquire(Context().get(), Lease("after-garbage"), &resp).ok());
  // Bytes that decode (here: none at all, every field at its default) are
  // checked as any request is.
  EXPECT_EQ(CallWithBytes(t, "/baton.v1.Locks/Acquire", "").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(BadInputTest, NamesAreCheckedWithAReason) {
  TestServer t;
  EXPECT_EQ(LockCode(t, Lease("")), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(LockCode(t, Lease(std::string(257, 'x'))), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(LockCode(t, Lease("has space")), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(LockCode(t, Lease(std::string("nul\0byte", 8))), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(LockCode(t, Lease("tab\tname")), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(LockCode(t, Lease(std::string(256, 'x'))), grpc::StatusCode::OK);
  v1::AcquireLockResponse resp;
  grpc::Status s = t.locks->Acquire(Context().get(), Lease("has space"), &resp);
  EXPECT_NE(s.error_message().find("offset 3"), std::string::npos) << s.error_message();
}

TEST(BadInputTest, OwnersAndDurationsAreChecked) {
  TestServer t;
  v1::AcquireLockRequest r;
  r.set_name("x");
  EXPECT_EQ(LockCode(t, r), grpc::StatusCode::INVALID_ARGUMENT);  // no owner
  r.mutable_ttl()->set_seconds(-1);
  EXPECT_EQ(LockCode(t, r), grpc::StatusCode::INVALID_ARGUMENT);
  r.mutable_ttl()->set_seconds(0);
  EXPECT_EQ(LockCode(t, r), grpc::StatusCode::INVALID_ARGUMENT);  // zero ttl
  r.mutable_ttl()->set_seconds(10LL * 365 * 24 * 3600);
  EXPECT_EQ(LockCode(t, r), grpc::StatusCode::INVALID_ARGUMENT);  // huge ttl
  r.mutable_ttl()->set_seconds(1);
  r.mutable_ttl()->set_nanos(-5);
  EXPECT_EQ(LockCode(t, r), grpc::StatusCode::INVALID_ARGUMENT);  // malformed
  r.clear_ttl();
  r.set_session_id(987654321);
  EXPECT_EQ(LockCode(t, r), grpc::StatusCode::NOT_FOUND);  // unknown session
  r = Lease("x");
  r.mutable_timeout()->set_seconds(-3);
  EXPECT_EQ(LockCode(t, r), grpc::StatusCode::INVALID_ARGUMENT);
  r = Lease("x");
  r.set_request_id(std::string(200, 'r'));
  EXPECT_EQ(LockCode(t, r), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(BadInputTest, ReleasingWhatYouDoNotHoldIsFailedPrecondition) {
  TestServer t;
  v1::AcquireLockResponse held;
  ASSERT_TRUE(t.locks->Acquire(Context().get(), Lease("r"), &held).ok());
  v1::ReleaseLockRequest rel;
  rel.set_name("r");
  rel.set_token(held.token() + 1);
  v1::ReleaseLockResponse rr;
  EXPECT_EQ(t.locks->Release(Context().get(), rel, &rr).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  rel.set_token(held.token());
  rel.set_session_id(5);  // not the holder's session
  EXPECT_EQ(t.locks->Release(Context().get(), rel, &rr).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  rel.set_name("never-used");
  EXPECT_EQ(t.locks->Release(Context().get(), rel, &rr).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST(BadInputTest, KindMismatchIsFailedPrecondition) {
  TestServer t;
  v1::AcquireLockResponse held;
  ASSERT_TRUE(t.locks->Acquire(Context().get(), Lease("k"), &held).ok());
  v1::SetEventRequest set;
  set.set_name("k");
  v1::SetEventResponse sr;
  grpc::Status s = t.events->Set(Context().get(), set, &sr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("is a lock"), std::string::npos);
}

TEST(BadInputTest, SemaphoreCountsAndCapacitiesAreChecked) {
  TestServer t;
  v1::AcquireSemaphoreRequest r;
  r.set_name("sem");
  *r.mutable_ttl() = Millis(10'000);
  v1::AcquireSemaphoreResponse resp;
  EXPECT_EQ(t.semaphores->Acquire(Context().get(), r, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);  // no capacity on first use
  r.set_capacity(-2);
  EXPECT_EQ(t.semaphores->Acquire(Context().get(), r, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  r.set_capacity(3);
  r.set_count(0);
  EXPECT_EQ(t.semaphores->Acquire(Context().get(), r, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  r.set_count(-1);
  EXPECT_EQ(t.semaphores->Acquire(Context().get(), r, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  r.set_count(4);
  EXPECT_EQ(t.semaphores->Acquire(Context().get(), r, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  r.set_capacity(int64_t{1} << 40);
  EXPECT_EQ(t.semaphores->Acquire(Context().get(), r, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  r.set_capacity(3);
  r.set_count(3);
  ASSERT_TRUE(t.semaphores->Acquire(Context().get(), r, &resp).ok());
  r.set_capacity(5);
  EXPECT_EQ(t.semaphores->Acquire(Context().get(), r, &resp).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST(BadInputTest, OversizedMessageIsResourceExhausted) {
  TestServer t;
  v1::AcquireLockRequest r = Lease("big");
  r.set_request_id(std::string(5 << 20, 'x'));
  EXPECT_EQ(LockCode(t, r), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(LockCode(t, Lease("after-big")), grpc::StatusCode::OK);  // still serving
}

TEST(BadInputTest, ListArgumentsAreChecked) {
  TestServer t;
  v1::ListRequest r;
  r.set_page_size(100000);
  v1::ListResponse resp;
  EXPECT_EQ(t.admin->List(Context().get(), r, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  r.set_page_size(0);
  r.set_page_token("bad token");
  EXPECT_EQ(t.admin->List(Context().get(), r, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(BadInputTest, NameAndWaiterLimitsAreResourceExhausted) {
  rpc::ServerOptions o = TestServer::DefaultOptions();
  o.max_resources = 4;  // 2 per shard
  o.max_waiters_per_resource = 1;
  TestServer t(o);
  int exhausted = 0;
  for (int i = 0; i < 8; ++i) {
    exhausted += LockCode(t, Lease(absl::StrCat("n", i))) == grpc::StatusCode::RESOURCE_EXHAUSTED;
  }
  EXPECT_GT(exhausted, 0);
}

}  // namespace
}  // namespace baton::testing
