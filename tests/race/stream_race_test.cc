// Cancellation atomicity on the session stream (DESIGN.md §3): operations are
// cancelled by id at random moments, racing their grants, and whole streams
// break and resume. Afterwards:
//   - at most one client at a time believes it holds the lock, and every
//     operation got exactly one answer;
//   - at the end nothing is held and nobody waits;
//   - every queue item put was received by exactly one consumer: none lost
//     to a cancelled Get, none delivered twice.
// Iterations: BATON_RACE_ITERS per client (default 400).
#include <atomic>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "integration/stream_client.h"
#include "integration/test_server.h"

namespace baton::testing {
namespace {

using namespace std::chrono_literals;

int Iterations() {
  const char* env = std::getenv("BATON_RACE_ITERS");
  return env != nullptr ? std::max(1, atoi(env)) : 400;
}

v1::StreamHello Hello(uint64_t session) {
  v1::StreamHello hello;
  if (session != 0) {
    hello.set_session_id(session);
  } else {
    *hello.mutable_ttl() = Millis(30'000);
  }
  return hello;
}

TEST(StreamRaceTest, CancelledAcquiresNeverLeakTheLock) {
  TestServer t;
  constexpr int kClients = 6;
  const int iters = Iterations();
  std::atomic<int> holders{0};
  std::atomic<int> overlaps{0};
  std::atomic<int> granted{0}, cancelled{0}, breaks{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      std::mt19937 rng(1000 + c);
      auto channel = t.NewChannel();
      auto stream = std::make_unique<StreamClient>(channel, Hello(0));
      auto welcome = stream->Welcome();
      ASSERT_TRUE(welcome.has_value());
      uint64_t session = welcome->session_id();
      uint64_t next_id = 1;
      for (int i = 0; i < iters; ++i) {
        uint64_t id = next_id++;
        v1::Operation acquire = AcquireOp(id, "race/stream/lock");
        acquire.mutable_acquire_lock()->set_request_id(absl::StrCat("c", c, "-", id));
        ASSERT_TRUE(stream->Send(acquire));
        int fate = static_cast<int>(rng() % 8);
        if (fate < 5) {
          std::this_thread::sleep_for(std::chrono::microseconds(rng() % 1500));
          stream->Cancel(id);
        } else if (fate == 5) {
          // Break the stream with the acquire in flight, then resume the
          // session on a new one: the acquire is cancelled or, if granted
          // first, its unsent answer rolled back; a sent one leaves the lock
          // with the session, which the client cannot know, so it releases
          // by session below.
          std::this_thread::sleep_for(std::chrono::microseconds(rng() % 1500));
          stream->Break();
          stream->Finish();
          auto r = stream->Await(id, 0ms);
          stream = std::make_unique<StreamClient>(channel, Hello(session));
          ASSERT_TRUE(stream->Welcome().has_value());
          ++breaks;
          if (r.has_value() && r->code() == 0) {
            // It got the grant before the break: it holds the lock.
            if (holders.fetch_add(1) != 0) ++overlaps;
            holders.fetch_sub(1);
            uint64_t rel = next_id++;
            ASSERT_TRUE(
                stream->Send(ReleaseOp(rel, "race/stream/lock", r->acquire_lock().token())));
            auto rr = stream->Await(rel);
            ASSERT_TRUE(rr.has_value());
            ASSERT_EQ(rr->code(), 0) << rr->message();
            ++granted;
          } else {
            // Unknown outcome: a grant whose answer was written but never
            // read is still held by the session. Retrying with the same
            // request_id (try once) returns it as REPLAYED, or takes the
            // lock afresh if it is free; either way, release it.
            uint64_t retry = next_id++;
            v1::Operation again = AcquireOp(retry, "race/stream/lock", 0);
            again.mutable_acquire_lock()->set_request_id(absl::StrCat("c", c, "-", id));
            ASSERT_TRUE(stream->Send(again));
            auto ar = stream->Await(retry);
            ASSERT_TRUE(ar.has_value());
            if (ar->code() == 0) {
              if (holders.fetch_add(1) != 0) ++overlaps;
              holders.fetch_sub(1);
              uint64_t rel = next_id++;
              ASSERT_TRUE(
                  stream->Send(ReleaseOp(rel, "race/stream/lock", ar->acquire_lock().token())));
              auto rr = stream->Await(rel);
              ASSERT_TRUE(rr.has_value());
              ASSERT_EQ(rr->code(), 0) << rr->message();
            } else {
              ASSERT_EQ(ar->code(), static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED))
                  << ar->message();
            }
          }
          continue;
        }
        auto r = stream->Await(id);
        ASSERT_TRUE(r.has_value()) << "no answer to " << id;
        ASSERT_EQ(stream->AnswersTo(id), 1);
        if (r->code() == 0) {
          if (holders.fetch_add(1) != 0) ++overlaps;
          std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300));
          holders.fetch_sub(1);
          uint64_t rel = next_id++;
          ASSERT_TRUE(stream->Send(ReleaseOp(rel, "race/stream/lock", r->acquire_lock().token())));
          auto rr = stream->Await(rel);
          ASSERT_TRUE(rr.has_value());
          ASSERT_EQ(rr->code(), 0) << rr->message();
          ++granted;
        } else {
          ASSERT_EQ(r->code(), static_cast<int>(grpc::StatusCode::CANCELLED)) << r->message();
          ++cancelled;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_GT(granted.load(), 0);
  EXPECT_GT(cancelled.load(), 0);
  // Nothing held, nobody waiting: the lock's resource is reclaimed.
  v1::DescribeRequest d;
  d.set_name("race/stream/lock");
  v1::DescribeResponse dr;
  grpc::Status st;
  for (int i = 0; i < 100; ++i) {
    st = t.admin->Describe(Context().get(), d, &dr);
    if (st.error_code() == grpc::StatusCode::NOT_FOUND) break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND)
      << "holders " << dr.holders_size() << " waiters " << dr.waiters();
  std::printf("stream lock race: %d granted, %d cancelled, %d breaks\n", granted.load(),
              cancelled.load(), breaks.load());
}

TEST(StreamRaceTest, CancelledGetsNeverLoseOrDuplicateItems) {
  TestServer t;
  constexpr int kConsumers = 4;
  const int items = Iterations() * 2;
  std::mutex mu;
  std::multiset<std::string> received;
  std::atomic<int> acked{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> consumers;
  for (int c = 0; c < kConsumers; ++c) {
    consumers.emplace_back([&, c] {
      std::mt19937 rng(2000 + c);
      StreamClient stream(t.NewChannel(), Hello(0));
      ASSERT_TRUE(stream.Welcome().has_value());
      uint64_t next_id = 1;
      while (!done.load()) {
        uint64_t id = next_id++;
        v1::Operation get;
        get.set_id(id);
        get.mutable_get()->set_name("race/stream/q");
        get.mutable_get()->set_max_items(1 + rng() % 3);
        *get.mutable_get()->mutable_timeout() = Millis(200);
        ASSERT_TRUE(stream.Send(get));
        if (rng() % 2 == 0) {
          std::this_thread::sleep_for(std::chrono::microseconds(rng() % 1000));
          stream.Cancel(id);
        }
        auto r = stream.Await(id);
        ASSERT_TRUE(r.has_value());
        ASSERT_EQ(stream.AnswersTo(id), 1);
        if (r->code() != 0) {
          ASSERT_TRUE(r->code() == static_cast<int>(grpc::StatusCode::CANCELLED) ||
                      r->code() == static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED))
              << r->code() << " " << r->message();
          continue;
        }
        v1::Operation ack;
        ack.set_id(next_id++);
        ack.mutable_ack()->set_name("race/stream/q");
        {
          std::lock_guard lock(mu);
          for (const auto& item : r->get().items()) {
            received.insert(item.text());
            ack.mutable_ack()->add_receipts(item.receipt());
          }
        }
        ASSERT_TRUE(stream.Send(ack));
        auto ar = stream.Await(ack.id());
        ASSERT_TRUE(ar.has_value());
        ASSERT_EQ(ar->code(), 0) << ar->message();
        acked += r->get().items_size();
      }
    });
  }
  for (int i = 0; i < items; ++i) {
    v1::PutRequest put;
    put.set_name("race/stream/q");
    put.add_items()->set_text(absl::StrCat("item-", i));
    v1::PutResponse resp;
    ASSERT_TRUE(t.queues->Put(Context().get(), put, &resp).ok());
    if (i % 16 == 0) std::this_thread::sleep_for(std::chrono::microseconds(300));
  }
  for (int i = 0; i < 1000 && acked.load() < items; ++i) std::this_thread::sleep_for(10ms);
  done = true;
  for (auto& th : consumers) th.join();
  EXPECT_EQ(acked.load(), items);
  std::lock_guard lock(mu);
  EXPECT_EQ(received.size(), static_cast<size_t>(items));
  for (int i = 0; i < items; ++i) {
    EXPECT_EQ(received.count(absl::StrCat("item-", i)), 1u) << i;
  }
}

// A grant that crosses its cancel is rolled back, and the CANCELLED answer
// comes only once the rollback is applied: whoever hears of the cancel can
// no longer see the grant. Made deterministic with one message that carries
// both the release that grants the waiting acquire and the acquire's cancel:
// the op is marked cancelled before its grant is answered, so the grant is
// always dropped and rolled back (on a durable server the rollback goes
// through the log, which is where an early CANCELLED used to get ahead).
TEST(StreamRaceTest, ACrossedGrantIsRolledBackBeforeTheCancelIsAnswered) {
  TestServer t;
  StreamClient stream(t.NewChannel(), Hello(0));
  ASSERT_TRUE(stream.Welcome().has_value());
  const std::string name = "race/stream/crossed";
  v1::DescribeRequest d;
  d.set_name(name);
  uint64_t next_id = 1;
  for (int round = 0; round < 100; ++round) {
    uint64_t first = next_id++;
    ASSERT_TRUE(stream.Send(AcquireOp(first, name)));
    auto held = stream.Await(first);
    ASSERT_TRUE(held.has_value());
    ASSERT_EQ(held->code(), 0) << held->message();
    // The same session asks again: a lock is not re-entrant, so it waits.
    uint64_t second = next_id++;
    v1::Operation again = AcquireOp(second, name);
    again.mutable_acquire_lock()->set_request_id(absl::StrCat("crossed-", round));
    ASSERT_TRUE(stream.Send(again));
    v1::DescribeResponse dr;
    for (int i = 0; i < 500 && dr.waiters() != 1; ++i) {
      dr.Clear();
      ASSERT_TRUE(t.admin->Describe(Context().get(), d, &dr).ok());
      if (dr.waiters() != 1) std::this_thread::sleep_for(1ms);
    }
    ASSERT_EQ(dr.waiters(), 1u) << "round " << round;
    uint64_t release = next_id++;
    ASSERT_TRUE(stream.Send({ReleaseOp(release, name, held->acquire_lock().token())}, {second}));
    auto r = stream.Await(second);
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->code(), static_cast<int>(grpc::StatusCode::CANCELLED)) << "round " << round;
    // Straight after the CANCELLED: nothing is held (the resource may be
    // gone altogether).
    dr.Clear();
    grpc::Status st = t.admin->Describe(Context().get(), d, &dr);
    if (st.ok()) {
      EXPECT_EQ(dr.holders_size(), 0) << "round " << round << ": the cancelled grant is held";
    } else {
      EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
    }
    auto rr = stream.Await(release);
    ASSERT_TRUE(rr.has_value());
    ASSERT_EQ(rr->code(), 0) << rr->message();
  }
}

// The same for a queue: an item handed to a Get that crosses its cancel goes
// back to the queue before the Get is answered CANCELLED.
TEST(StreamRaceTest, ACrossedGetIsRolledBackBeforeTheCancelIsAnswered) {
  TestServer t;
  StreamClient stream(t.NewChannel(), Hello(0));
  ASSERT_TRUE(stream.Welcome().has_value());
  uint64_t next_id = 1;
  for (int round = 0; round < 100; ++round) {
    // A queue per round: the item of the round before is back in its queue.
    const std::string name = absl::StrCat("race/stream/crossed-q", round);
    v1::DescribeRequest d;
    d.set_name(name);
    uint64_t get = next_id++;
    v1::Operation g;
    g.set_id(get);
    g.mutable_get()->set_name(name);
    g.mutable_get()->set_request_id(absl::StrCat("get-", round));
    ASSERT_TRUE(stream.Send(g));
    v1::DescribeResponse dr;
    for (int i = 0; i < 500 && dr.waiters() != 1; ++i) {
      dr.Clear();
      grpc::Status st = t.admin->Describe(Context().get(), d, &dr);
      ASSERT_TRUE(st.ok() || st.error_code() == grpc::StatusCode::NOT_FOUND);
      if (dr.waiters() != 1) std::this_thread::sleep_for(1ms);
    }
    ASSERT_EQ(dr.waiters(), 1u) << "round " << round;
    uint64_t put = next_id++;
    v1::Operation p;
    p.set_id(put);
    p.mutable_put()->set_name(name);
    p.mutable_put()->add_items()->set_data(absl::StrCat("item-", round));
    ASSERT_TRUE(stream.Send({p}, {get}));
    auto r = stream.Await(get);
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->code(), static_cast<int>(grpc::StatusCode::CANCELLED)) << "round " << round;
    dr.Clear();
    ASSERT_TRUE(t.admin->Describe(Context().get(), d, &dr).ok());
    EXPECT_EQ(dr.queue().in_flight(), 0u) << "round " << round << ": the cancelled Get's item";
    EXPECT_EQ(dr.queue().size(), 1u) << "round " << round << ": the item is back in the queue";
    auto pr = stream.Await(put);
    ASSERT_TRUE(pr.has_value());
    ASSERT_EQ(pr->code(), 0) << pr->message();
  }
}

}  // namespace
}  // namespace baton::testing
