// Bad input over real gRPC: each gets a precise status, never a crash.
#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/generic_stub.h>

#include <cstdlib>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "integration/raw_call.h"
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

grpc::Status CallWithBytes(TestServer& t, const std::string& method, const std::string& bytes) {
  return RawUnary(t.channel, method, bytes, Context(5'000).get());
}

grpc::Status StreamWithBytes(TestServer& t, const std::string& method, const std::string& bytes) {
  return RawServerStream(t.channel, method, bytes, Context(5'000).get());
}

// Every method of every service that takes one request (unary and
// server-streaming), sent bytes that are not protobuf (a field tag whose
// varint never ends), answers INVALID_ARGUMENT naming the request type:
// never INTERNAL, never a crash.
TEST(BadInputTest, UndecodableRequestBytesAreInvalidArgumentOnEveryMethodTakingOneRequest) {
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
      if (m->client_streaming()) continue;  // a stream of requests: see the stream's tests
      ++methods;
      std::string path = absl::StrCat("/", service->full_name(), "/", m->name());
      grpc::Status s = m->server_streaming() ? StreamWithBytes(t, path, garbage)
                                             : CallWithBytes(t, path, garbage);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
          << path << ": " << s.error_message();
      EXPECT_NE(s.error_message().find(m->input_type()->full_name()), std::string::npos)
          << path << ": " << s.error_message();
    }
  }
  EXPECT_GE(methods, 43);
  // The server still serves, and a valid request on the same channel works.
  v1::AcquireLockResponse resp;
  EXPECT_TRUE(t.locks->Acquire(Context().get(), Lease("after-garbage"), &resp).ok());
  // Bytes that decode (here: none at all, every field at its default) are
  // checked as any request is.
  EXPECT_EQ(CallWithBytes(t, "/baton.v1.Locks/Acquire", "").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

// The two methods with a request stream decode each message themselves too:
// bytes that are not their request end the call INVALID_ARGUMENT naming the
// type, whether first or after good messages.
TEST(BadInputTest, UndecodableMessagesOnRequestStreamsAreInvalidArgument) {
  TestServer t;
  const std::string garbage("\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11);
  v1::StreamRequest hello;
  *hello.mutable_hello()->mutable_ttl() = Millis(10'000);
  v1::KeepAliveRequest keepalive;
  keepalive.set_session_id(OpenSession(t));
  struct Case {
    std::string method;
    std::vector<std::string> messages;
    std::string type;
  };
  for (const Case& c : std::vector<Case>{
           {"/baton.v1.Stream/Connect", {garbage}, "baton.v1.StreamRequest"},
           {"/baton.v1.Stream/Connect",
            {hello.SerializeAsString(), garbage},
            "baton.v1.StreamRequest"},
           {"/baton.v1.Sessions/KeepAliveStream", {garbage}, "baton.v1.KeepAliveRequest"},
           {"/baton.v1.Sessions/KeepAliveStream",
            {keepalive.SerializeAsString(), garbage},
            "baton.v1.KeepAliveRequest"},
       }) {
    grpc::Status s = RawStream(t.channel, c.method, c.messages, Context(5'000).get());
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.method << " after " << c.messages.size() - 1 << ": " << s.error_message();
    EXPECT_NE(s.error_message().find(c.type), std::string::npos) << s.error_message();
  }
  // Good messages still work on both.
  grpc::Status good = RawStream(t.channel, "/baton.v1.Sessions/KeepAliveStream",
                                {keepalive.SerializeAsString()}, Context(5'000).get());
  EXPECT_TRUE(good.ok()) << good.error_message();
}

// Bytes shaped like protobuf: a few fields with random numbers, wire types
// and contents (short printable strings, so that some are valid names, and
// nested fields), so that most decode and reach validation and the state
// machine; now and then truncated, so that some do not.
std::string RandomRequest(std::mt19937& rng, int depth = 0) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
  auto varint = [](std::string& out, uint64_t v) {
    while (v >= 0x80) {
      out.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out.push_back(static_cast<char>(v));
  };
  std::string out;
  if (depth == 0 && pick(4) != 0) {  // usually a valid name first (most requests' field 1)
    static const char* kNames[] = {"fuzz/a", "fuzz/b", "fuzz/q", "x"};
    std::string name = kNames[pick(4)];
    varint(out, (1 << 3) | 2);
    varint(out, name.size());
    out += name;
  }
  int fields = 1 + pick(5);
  for (int f = 0; f < fields; ++f) {
    uint32_t number = 1 + pick(12);
    switch (pick(4)) {
      case 0: {  // varint: small, huge or negative
        varint(out, number << 3);
        uint64_t values[] = {0, 1, 2, 7, 1000, 60'000, uint64_t{1} << 40, ~uint64_t{0}};
        varint(out, values[pick(8)]);
        break;
      }
      case 1: {  // a string: printable, sometimes with a space or a NUL
        varint(out, (number << 3) | 2);
        std::string text;
        int n = pick(12);
        for (int i = 0; i < n; ++i) text.push_back("abc/-_.x Z0\0"[pick(13)]);
        varint(out, text.size());
        out += text;
        break;
      }
      case 2: {  // a nested message (a Duration, options...)
        varint(out, (number << 3) | 2);
        std::string inner = depth < 2 ? RandomRequest(rng, depth + 1) : std::string();
        varint(out, inner.size());
        out += inner;
        break;
      }
      default: {  // fixed 32 or 64
        bool wide = pick(2) == 0;
        varint(out, (number << 3) | (wide ? 1 : 5));
        for (int i = 0; i < (wide ? 8 : 4); ++i) out.push_back(static_cast<char>(rng()));
        break;
      }
    }
  }
  if (pick(8) == 0 && !out.empty()) out.resize(pick(static_cast<int>(out.size())));
  return out;
}

// A property test through gRPC, bounded: random requests to every unary
// method, 100 at a time with a short deadline, never get INTERNAL or
// UNKNOWN, and the server keeps serving. BATON_FUZZ_SEED repeats a run,
// BATON_FUZZ_CALLS makes it longer.
TEST(BadInputTest, RandomRequestsToEveryUnaryMethodNeverGetInternal) {
  TestServer t;
  uint32_t seed = std::random_device{}();
  if (const char* env = std::getenv("BATON_FUZZ_SEED")) seed = std::strtoul(env, nullptr, 10);
  int calls = 3000;
  if (const char* env = std::getenv("BATON_FUZZ_CALLS")) calls = std::atoi(env);
  std::mt19937 rng(seed);
  SCOPED_TRACE(absl::StrCat("BATON_FUZZ_SEED=", seed));
  std::vector<std::string> methods;
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const char* name : {"Sessions", "Locks", "Semaphores", "Events", "Queues", "Futures",
                           "Barriers", "Conditions", "Timers", "Tasks", "Admin"}) {
    const auto* service = pool->FindServiceByName(absl::StrCat("baton.v1.", name));
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* m = service->method(i);
      if (m->client_streaming() || m->server_streaming()) continue;
      methods.push_back(absl::StrCat("/", service->full_name(), "/", m->name()));
    }
  }
  grpc::GenericStub stub(t.channel);
  std::map<grpc::StatusCode, int> codes;
  int undecodable = 0;
  for (int done = 0; done < calls;) {
    struct Call {
      std::string method, bytes;
      std::unique_ptr<grpc::ClientContext> ctx;
      std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
      grpc::ByteBuffer response;
      grpc::Status status;
    };
    grpc::CompletionQueue cq;
    std::vector<Call> batch(std::min(100, calls - done));
    for (size_t i = 0; i < batch.size(); ++i) {
      Call& c = batch[i];
      c.method = methods[rng() % methods.size()];
      c.bytes = RandomRequest(rng);
      c.ctx = Context(300);
      grpc::Slice slice(c.bytes);
      grpc::ByteBuffer request(&slice, 1);
      c.reader = stub.PrepareUnaryCall(c.ctx.get(), c.method, request, &cq);
      c.reader->StartCall();
      c.reader->Finish(&c.response, &c.status, reinterpret_cast<void*>(i + 1));
    }
    for (size_t n = 0; n < batch.size(); ++n) {
      void* tag = nullptr;
      bool ok = false;
      ASSERT_TRUE(cq.Next(&tag, &ok));
      Call& c = batch[reinterpret_cast<size_t>(tag) - 1];
      ++codes[c.status.error_code()];
      if (c.status.error_message().find("does not decode") != std::string::npos) ++undecodable;
      EXPECT_NE(c.status.error_code(), grpc::StatusCode::INTERNAL)
          << c.method << " " << absl::CEscape(c.bytes) << ": " << c.status.error_message();
      EXPECT_NE(c.status.error_code(), grpc::StatusCode::UNKNOWN)
          << c.method << " " << absl::CEscape(c.bytes) << ": " << c.status.error_message();
    }
    done += static_cast<int>(batch.size());
  }
  std::string summary;
  for (const auto& [code, n] : codes) absl::StrAppend(&summary, " ", code, ":", n);
  std::printf("random requests: %d calls, seed %u, %d undecodable, codes%s\n", calls, seed,
              undecodable, summary.c_str());
  // Most decode and get past the decoder; some are served.
  EXPECT_LT(undecodable, calls / 2);
  EXPECT_GT(codes[grpc::StatusCode::OK], 0);
  v1::AcquireLockResponse resp;
  EXPECT_TRUE(t.locks->Acquire(Context().get(), Lease("after-fuzz"), &resp).ok());
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
