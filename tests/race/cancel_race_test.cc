// Cancellation atomicity over real gRPC (DESIGN.md §3): clients acquire one
// lock / one semaphore while their calls are cancelled or time out at random
// points, racing the grant. Afterwards, and at every step from the clients'
// point of view:
//   - at most one client believes it holds the lock, and semaphore permits
//     believed held never exceed the capacity;
//   - no fencing token is ever delivered twice, and tokens only increase;
//   - a grant whose reply was lost is either rolled back by the server or
//     recovered by the client's retry with the same request_id (REPLAYED);
//   - a grant the client read is never taken back: its release succeeds,
//     even when the reply raced the cancel or the deadline;
//   - at the end nothing is held and nobody waits: the resource is
//     reclaimed without waiting for any lease.
// Iterations: BATON_RACE_ITERS per client (default 400; 8 clients).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "integration/test_server.h"

namespace baton::testing {
namespace {

int Iterations() {
  const char* env = std::getenv("BATON_RACE_ITERS");
  return env != nullptr ? std::max(1, atoi(env)) : 400;
}

enum class Fate { kNone, kCancel, kDeadline };

// One Acquire call whose client cancels it, or whose deadline passes, at a
// random moment. Returns its status. `*ambiguous`: an OK reply that raced
// the cancel or the deadline (the cancel was sent before it came, or it came
// once the deadline had passed). gRPC cannot tell the server whether such a
// reply reached the client, so the server keeps such a grant (Delivery::
// kUncertain): the client holds it and its release must succeed; had the
// client not read it, its retry by request_id would find it (REPLAYED).
template <class Stub, class Req, class Resp>
grpc::Status RacedCall(Stub* stub, const Req& req, Resp* resp, std::mt19937& rng,
                       grpc::CompletionQueue& cq, bool* ambiguous) {
  grpc::ClientContext ctx;
  Fate fate = static_cast<Fate>(rng() % 3);
  auto delay = std::chrono::microseconds(rng() % 3000);
  auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(20);
  if (fate == Fate::kDeadline) {
    deadline = std::chrono::system_clock::now() + delay + std::chrono::microseconds(200);
  }
  ctx.set_deadline(deadline);
  auto rpc = stub->PrepareAsyncAcquire(&ctx, req, &cq);
  rpc->StartCall();
  grpc::Status status;
  rpc->Finish(resp, &status, reinterpret_cast<void*>(1));
  void* tag;
  bool ok;
  bool raced = false;
  if (fate == Fate::kCancel) {
    std::this_thread::sleep_for(delay);
    if (cq.AsyncNext(&tag, &ok, std::chrono::system_clock::now()) ==
        grpc::CompletionQueue::GOT_EVENT) {
      *ambiguous = false;  // answered before the cancel
      return status;
    }
    ctx.TryCancel();
    raced = true;
  }
  EXPECT_TRUE(cq.Next(&tag, &ok));
  if (fate == Fate::kDeadline && std::chrono::system_clock::now() >= deadline) raced = true;
  *ambiguous = raced && status.ok();
  return status;
}

class Books {
 public:
  void Granted(uint64_t token) {
    std::lock_guard<std::mutex> l(mu_);
    EXPECT_TRUE(tokens_.insert(token).second) << "token " << token << " delivered twice";
  }
  std::atomic<int64_t> held{0};  // permits (or 0/1 for the lock) believed held
  std::atomic<int64_t> max_held{0};
  std::atomic<int> grants{0}, recovered{0}, rolled_back_or_lost{0};
  std::atomic<int> ambiguous{0};  // OK replies that raced their cancel or deadline

  void Take(int64_t n) {
    int64_t now = held += n;
    int64_t m = max_held.load();
    while (now > m && !max_held.compare_exchange_weak(m, now)) {
    }
  }

 private:
  std::mutex mu_;
  std::set<uint64_t> tokens_;
};

// Nothing held, nobody waiting: reclaimed (a lock), or idle and still
// declared (a semaphore).
bool Settled(TestServer& t, const std::string& name) {
  for (int i = 0; i < 400; ++i) {
    v1::DescribeRequest d;
    d.set_name(name);
    v1::DescribeResponse dr;
    grpc::Status s = t.admin->Describe(Context().get(), d, &dr);
    if (s.error_code() == grpc::StatusCode::NOT_FOUND) return true;
    if (s.ok() && dr.holders_size() == 0 && dr.waiters() == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

TEST(CancelRaceTest, LockIsNeverLeakedOrDoubled) {
  TestServer t;
  const std::string name = "race/lock";
  const int clients = 8, iters = Iterations();
  Books books;
  std::atomic<uint64_t> last_token{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      std::mt19937 rng(c * 7919 + 1);
      auto stub = v1::Locks::NewStub(t.NewChannel());
      grpc::CompletionQueue cq;
      uint64_t session = OpenSession(t, 60'000);
      for (int i = 0; i < iters; ++i) {
        v1::AcquireLockRequest req;
        req.set_name(name);
        req.set_session_id(session);
        req.set_request_id(absl::StrCat("c", c, "-", i));
        v1::AcquireLockResponse resp;
        bool ambiguous = false;
        grpc::Status s = RacedCall(stub.get(), req, &resp, rng, cq, &ambiguous);
        if (!s.ok()) {
          ASSERT_TRUE(s.error_code() == grpc::StatusCode::CANCELLED ||
                      s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
              << s.error_code() << " " << s.error_message();
          // The reply may have been lost after the server granted it: ask
          // again with the same request id, without waiting.
          *req.mutable_timeout() = Millis(0);
          s = stub->Acquire(Context().get(), req, &resp);
          if (!s.ok()) {
            ASSERT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
            ++books.rolled_back_or_lost;
            continue;
          }
          if (resp.outcome() == v1::GRANT_OUTCOME_REPLAYED) ++books.recovered;
        }
        if (resp.outcome() != v1::GRANT_OUTCOME_REPLAYED) books.Granted(resp.token());
        uint64_t prev = last_token.exchange(resp.token());
        EXPECT_GT(resp.token(), prev);
        // A grant the client read is held, even one whose reply raced the
        // cancel (the server keeps what may have been read: Delivery).
        if (ambiguous) ++books.ambiguous;
        books.Take(1);
        ++books.grants;
        if (rng() % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300));
        books.held -= 1;
        v1::ReleaseLockRequest rel;
        rel.set_name(name);
        rel.set_token(resp.token());
        rel.set_session_id(session);
        v1::ReleaseLockResponse rr;
        grpc::Status r = stub->Release(Context().get(), rel, &rr);
        ASSERT_TRUE(r.ok()) << "release of token " << resp.token() << ": " << r.error_message();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(books.max_held.load(), 1) << "two clients held the lock at once";
  EXPECT_GT(books.grants.load(), 0);
  EXPECT_TRUE(Settled(t, name)) << "lock still held or waited for after every client left";
  std::cout << "lock race: " << books.grants << " grants, " << books.recovered
            << " recovered by replay, " << books.rolled_back_or_lost << " lost to cancellation, "
            << books.ambiguous << " OK replies that raced their cancel or deadline\n";
}

TEST(CancelRaceTest, SemaphorePermitsAddUp) {
  TestServer t;
  const std::string name = "race/sem";
  const int64_t capacity = 3;
  const int clients = 8, iters = Iterations() / 2;
  Books books;
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      std::mt19937 rng(c * 104729 + 3);
      auto stub = v1::Semaphores::NewStub(t.NewChannel());
      grpc::CompletionQueue cq;
      uint64_t session = OpenSession(t, 60'000);
      for (int i = 0; i < iters; ++i) {
        v1::AcquireSemaphoreRequest req;
        req.set_name(name);
        req.set_capacity(capacity);
        req.set_count(1 + rng() % capacity);
        req.set_session_id(session);
        req.set_request_id(absl::StrCat("s", c, "-", i));
        v1::AcquireSemaphoreResponse resp;
        bool ambiguous = false;
        grpc::Status s = RacedCall(stub.get(), req, &resp, rng, cq, &ambiguous);
        if (!s.ok()) {
          *req.mutable_timeout() = Millis(0);
          s = stub->Acquire(Context().get(), req, &resp);
          if (!s.ok()) {
            ASSERT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
            continue;
          }
        }
        if (resp.outcome() != v1::GRANT_OUTCOME_REPLAYED) books.Granted(resp.token());
        if (ambiguous) ++books.ambiguous;  // held all the same (see the lock test)
        books.Take(resp.count());
        ++books.grants;
        books.held -= resp.count();
        v1::ReleaseSemaphoreRequest rel;
        rel.set_name(name);
        rel.set_token(resp.token());
        rel.set_session_id(session);
        v1::ReleaseSemaphoreResponse rr;
        grpc::Status r = stub->Release(Context().get(), rel, &rr);
        ASSERT_TRUE(r.ok()) << "release of token " << resp.token() << ": " << r.error_message();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(books.max_held.load(), capacity);
  EXPECT_GT(books.grants.load(), 0);
  EXPECT_TRUE(Settled(t, name));
}

TEST(CancelRaceTest, SessionLossDuringWaitsLeavesNothingBehind) {
  TestServer t;
  const std::string name = "race/session";
  uint64_t holder = OpenSession(t, 60'000);
  v1::AcquireLockRequest hold;
  hold.set_name(name);
  hold.set_session_id(holder);
  v1::AcquireLockResponse held;
  ASSERT_TRUE(t.locks->Acquire(Context().get(), hold, &held).ok());
  std::vector<std::thread> threads;
  std::atomic<int> aborted{0};
  for (int c = 0; c < 16; ++c) {
    threads.emplace_back([&] {
      uint64_t s = OpenSession(t, 60'000);
      std::thread closer([&, s] {
        v1::CloseSessionRequest close;
        close.set_session_id(s);
        v1::CloseSessionResponse cr;
        t.sessions->Close(Context().get(), close, &cr);
      });
      v1::AcquireLockRequest req = hold;
      req.set_session_id(s);
      v1::AcquireLockResponse resp;
      grpc::Status st = t.locks->Acquire(Context().get(), req, &resp);
      closer.join();
      if (st.error_code() == grpc::StatusCode::ABORTED ||
          st.error_code() == grpc::StatusCode::NOT_FOUND) {
        ++aborted;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(aborted.load(), 16);
  v1::CloseSessionRequest close;
  close.set_session_id(holder);
  v1::CloseSessionResponse cr;
  ASSERT_TRUE(t.sessions->Close(Context().get(), close, &cr).ok());
  EXPECT_TRUE(Settled(t, name));
}

}  // namespace
}  // namespace baton::testing
