// The client's session against real batond processes: the keep-alive stream,
// reconnecting within the TTL after a dropped connection (through a TcpProxy),
// loss when the server forgets the session or cannot be reached for a TTL,
// renewal, closing, and server shutdown ending waits.
#include <grpcpp/grpcpp.h>

#include <future>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "baton/v1/session.grpc.pb.h"
#include "tests/tcp_proxy.h"
#include "tests/test_env.h"

namespace baton::testing {
namespace {

// Closes a session by id from outside the client, as an operator would.
void CloseSessionElsewhere(const std::string& address, uint64_t session_id) {
  auto stub = v1::Sessions::NewStub(SuiteChannel(address));
  grpc::ClientContext context;
  AddSuiteToken(context);
  v1::CloseSessionRequest request;
  request.set_session_id(session_id);
  v1::CloseSessionResponse response;
  ASSERT_TRUE(stub->Close(&context, request, &response).ok());
}

TEST(SessionTest, DescribeShowsTheKeepAliveStream) {
  Client client = MustConnect("", {.session_ttl = absl::Seconds(5), .label = "cpp-session-test"});
  EXPECT_TRUE(Eventually([&] {
    auto info = client.DescribeSession();
    return info.ok() && info->open_streams == 1 && !info->expires_in.has_value();
  }));
  auto info = client.DescribeSession();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->session_id, client.session_id());
  EXPECT_EQ(info->label, "cpp-session-test");
  EXPECT_EQ(info->ttl, absl::Seconds(5));
  EXPECT_FALSE(client.session_lost());
  EXPECT_TRUE(client.session_status().ok());
}

TEST(SessionTest, ClosingTheClientReleasesWhatItHeld) {
  Client observer = MustConnect();
  std::string name = Name();
  LockGuard outlives_client;
  {
    Client client = MustConnect();
    auto held = client.Lock(name).Acquire();
    ASSERT_TRUE(held.ok());
    outlives_client = std::move(*held);
  }  // ~Client closes the session
  EXPECT_TRUE(Free(observer, name));
  EXPECT_FALSE(outlives_client.holds());
  EXPECT_EQ(outlives_client.Release().code(), absl::StatusCode::kAborted);
}

// The contract's session loss: the holdings' lost signals fire, pending
// waits end with the loss, on_session_lost runs once, and the client opens a
// new session by itself for the calls that follow.
void SessionLossFiresLostSignalsAndANewSessionTakesOver(Transport transport) {
  std::atomic<int> callbacks{0};
  Client client = MustConnect("", {.transport = transport,
                                   .session_ttl = absl::Seconds(2),
                                   .on_session_lost = [&](absl::Status why) {
                                     EXPECT_EQ(why.code(), absl::StatusCode::kAborted);
                                     ++callbacks;
                                   }});
  std::string name = Name();
  auto held = client.Lock(name).Acquire();
  ASSERT_TRUE(held.ok());
  std::atomic<int> lost_signals{0};
  absl::Status lost_why;
  held->OnLost([&](absl::Status why) {
    lost_why = why;
    ++lost_signals;
  });
  EXPECT_FALSE(held->lost());
  // A wait pending when the session goes: it ends with the loss.
  std::optional<absl::StatusOr<GrantOutcome>> waited;
  std::thread waiter([&] { waited.emplace(client.Event(Name("never")).Wait()); });
  ASSERT_TRUE(Eventually([&] { return Waiters(client, Name("never")) == 1; }));
  uint64_t old_session = client.session_id();

  CloseSessionElsewhere(SharedServer().address(), old_session);
  ASSERT_TRUE(Eventually([&] { return lost_signals.load() == 1; }, absl::Seconds(5)));
  waiter.join();
  EXPECT_EQ(waited->status().code(), absl::StatusCode::kAborted) << waited->status();
  EXPECT_EQ(lost_why.code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(Eventually([&] { return callbacks.load() == 1; }));
  EXPECT_TRUE(held->lost());
  EXPECT_FALSE(held->holds());
  EXPECT_EQ(held->Release().code(), absl::StatusCode::kAborted);
  // Registered after the loss: called at once.
  int late = 0;
  held->OnLost([&](absl::Status) { ++late; });
  EXPECT_EQ(late, 1);

  // A new session, opened by the client itself.
  ASSERT_TRUE(Eventually([&] {
    return client.session_id() != 0 && client.session_id() != old_session && !client.session_lost();
  }));
  auto again = client.Lock(name).TryAcquire();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->session_id(), client.session_id());
  EXPECT_FALSE(again->lost());
  EXPECT_EQ(callbacks.load(), 1);
  EXPECT_EQ(lost_signals.load(), 1);
  EXPECT_TRUE(client.RenewSession().ok()) << "nothing to renew";
}

TEST(SessionTest, SessionLossFiresLostSignalsAndANewSessionTakesOver) {
  SessionLossFiresLostSignalsAndANewSessionTakesOver(Transport::kStream);
}

TEST(SessionTest, SessionLossFiresLostSignalsAndANewSessionTakesOverUnary) {
  SessionLossFiresLostSignalsAndANewSessionTakesOver(Transport::kUnary);
}

TEST(SessionTest, ReconnectsWithinTheTtlAfterADroppedConnection) {
  TcpProxy proxy(SharedServer().port());
  Client observer = MustConnect();
  std::atomic<bool> lost{false};
  Client client = MustConnect(
      proxy.address(), SuiteOptions({.session_ttl = absl::Seconds(3),
                                     .on_session_lost = [&](absl::Status) { lost = true; }}));
  std::string name = Name();
  auto held = client.Lock(name).Acquire();
  ASSERT_TRUE(held.ok());
  auto stream_attached = [&] {
    auto info = client.DescribeSession();
    return info.ok() && info->open_streams == 1;
  };
  ASSERT_TRUE(Eventually(stream_attached));
  EXPECT_EQ(client.keepalive_streams_opened(), 1);

  proxy.DropConnections();
  ASSERT_TRUE(Eventually([&] { return client.keepalive_streams_opened() >= 2; }));
  ASSERT_TRUE(Eventually(stream_attached)) << "the new stream names the session again";
  // Outlive the TTL: the new stream must have claimed the session in time.
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  EXPECT_FALSE(lost.load());
  EXPECT_FALSE(client.session_lost());
  EXPECT_TRUE(held->holds());
  auto info = observer.Admin().Describe(name);
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_EQ(info->holders.size(), 1u);
  EXPECT_EQ(info->holders[0].session_id, client.session_id());
  EXPECT_TRUE(held->Release().ok());
}

TEST(SessionTest, UnreachableServerForATtlLosesTheSession) {
  TcpProxy proxy(SharedServer().port());
  Client observer = MustConnect();
  std::atomic<bool> lost{false};
  Client client = MustConnect(
      proxy.address(), SuiteOptions({.session_ttl = absl::Seconds(1),
                                     .on_session_lost = [&](absl::Status) { lost = true; }}));
  std::string name = Name();
  auto held = client.Lock(name).Acquire();
  ASSERT_TRUE(held.ok());

  proxy.SetBlocked(true);
  ASSERT_TRUE(Eventually([&] { return lost.load(); }, absl::Seconds(5)));
  EXPECT_TRUE(client.session_lost());
  EXPECT_FALSE(held->holds());
  // The server agrees: it expired the session and released the lock.
  EXPECT_TRUE(Eventually([&] { return Free(observer, name); }));
  proxy.SetBlocked(false);
  // The client opens a new session by itself (RenewSession is for a unary
  // client whose own attempt failed while the server was unreachable).
  ASSERT_TRUE(Eventually([&] { return client.RenewSession().ok() && !client.session_lost(); },
                         absl::Seconds(10)));
  auto again = client.Lock(name).TryAcquire();
  EXPECT_TRUE(again.ok()) << again.status();
}

TEST(SessionTest, SessionOwnedWaitsEndWithAbortedWhenTheSessionEnds) {
  Client holder = MustConnect();
  Client waiter = MustConnect();
  std::string name = Name();
  auto held = holder.Lock(name).Acquire();
  ASSERT_TRUE(held.ok());
  std::optional<absl::StatusOr<LockGuard>> result;
  std::thread t([&] { result.emplace(waiter.Lock(name).Acquire()); });
  ASSERT_TRUE(Eventually([&] { return Waiters(holder, name) == 1; }));
  CloseSessionElsewhere(SharedServer().address(), waiter.session_id());
  t.join();
  EXPECT_EQ(result->status().code(), absl::StatusCode::kAborted);
}

TEST(SessionTest, ServerShutdownEndsWaitsWithUnavailable) {
  auto server = BatondProcess::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  Client client = MustConnect((*server)->address());
  std::optional<absl::StatusOr<GrantOutcome>> waited;
  std::thread t([&] { waited.emplace(client.Event("shutdown/e").Wait()); });
  ASSERT_TRUE(Eventually([&] { return Waiters(client, "shutdown/e") == 1; }));
  (*server)->Stop();
  t.join();
  EXPECT_EQ(waited->status().code(), absl::StatusCode::kUnavailable);
}

// A callback may hold the last handle of its Client, or the Client itself (a
// coroutine resumed by one does, as in AwaitableTest): the session is closed
// and the client torn down on a thread of their own, not inside gRPC's
// callback, where destroying the channel is a gRPC crash (grpc/grpc#37858;
// seen here as a double free in grpc_cq_internal_unref under ASan, rarely, in
// AwaitableTest), and not on a thread that Close waits for (on the stream the
// callback runs in the stream's reactor: Close there never returned).
bool SessionClosed(uint64_t session_id) {
  auto stub = v1::Sessions::NewStub(SuiteChannel(SharedServer().address()));
  grpc::ClientContext context;
  AddSuiteToken(context);
  v1::DescribeSessionRequest request;
  request.set_session_id(session_id);
  v1::DescribeSessionResponse response;
  return stub->Describe(&context, request, &response).error_code() == grpc::StatusCode::NOT_FOUND;
}

void TheClientMayGoWithACallback(Transport transport) {
  Client observer = MustConnect();
  for (int round = 0; round < 20; ++round) {
    std::string name = Name(absl::StrCat("e", round));
    auto woke = std::make_shared<std::promise<absl::Status>>();
    std::future<absl::Status> woke_future = woke->get_future();
    uint64_t session_id = 0;
    {
      auto client = std::make_shared<Client>(MustConnect("", {.transport = transport}));
      session_id = client->session_id();
      Event event = client->Event(name);
      // The callback's captures are the Client's last owners once the test
      // has let go of its own (at the end of this block).
      event.AsyncWait({}, [client, event, woke](absl::StatusOr<GrantOutcome> outcome) {
        woke->set_value(outcome.status());
      });
      ASSERT_TRUE(Eventually([&] { return Waiters(observer, name) == 1; }));
    }
    ASSERT_TRUE(observer.Event(name).Set().ok());
    ASSERT_EQ(woke_future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    EXPECT_TRUE(woke_future.get().ok());
    EXPECT_TRUE(Eventually([&] { return SessionClosed(session_id); })) << "round " << round;
  }
}

TEST(SessionTest, TheClientMayGoWithACallback) { TheClientMayGoWithACallback(Transport::kStream); }

TEST(SessionTest, TheClientMayGoWithACallbackUnary) {
  TheClientMayGoWithACallback(Transport::kUnary);
}

TEST(SessionTest, ConnectFailsWithoutAServer) {
  TcpProxy proxy(SharedServer().port());
  proxy.SetBlocked(true);
  absl::StatusOr<Client> client =
      Client::Connect(proxy.address(), SuiteOptions({.connect_timeout = absl::Milliseconds(500)}));
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kDeadlineExceeded) << client.status();
}

}  // namespace
}  // namespace baton::testing
