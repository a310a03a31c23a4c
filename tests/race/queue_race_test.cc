// Queue cancellation races over real gRPC: producers and consumers whose
// calls are cancelled, or whose deadlines pass, at random moments. Afterwards
// every item whose Put succeeded was acknowledged exactly once, no item was
// acknowledged twice, and nothing is left behind (DESIGN.md §3: "nothing is
// leaked, nothing is lost").
//
// Iterations: BATON_RACE_ITERS per producer (default 1000; 4 producers and
// 4 consumers).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "integration/test_server.h"

namespace baton::testing {
namespace {

int Iterations() {
  const char* env = std::getenv("BATON_RACE_ITERS");
  return env != nullptr ? std::max(1, atoi(env)) : 1000;
}

// Starts an async unary call, cancels it or lets a short deadline cut it at
// a random moment (or neither), and returns its status.
template <class Prepare>
grpc::Status Raced(Prepare prepare, std::mt19937& rng, grpc::CompletionQueue& cq) {
  grpc::ClientContext ctx;
  int fate = static_cast<int>(rng() % 3);  // 0 none, 1 cancel, 2 deadline
  // Mostly inside the few hundred microseconds a call takes on loopback, so
  // that cancellations land while the server is granting.
  auto delay = std::chrono::microseconds(rng() % 4 == 0 ? rng() % 3000 : rng() % 300);
  ctx.set_deadline(std::chrono::system_clock::now() +
                   (fate == 2 ? delay : std::chrono::microseconds(20'000'000)));
  grpc::Status status;
  prepare(&ctx, &cq, &status);
  if (fate == 1) {
    std::this_thread::sleep_for(delay);
    ctx.TryCancel();
  }
  void* tag;
  bool ok;
  EXPECT_TRUE(cq.Next(&tag, &ok));
  return status;
}

TEST(QueueRaceTest, NoItemIsLostOrDeliveredTwice) {
  TestServer t;
  const std::string name = "race/queue";
  const int producers = 4, consumers = 4, iters = Iterations();
  std::mutex mu;
  std::set<std::string> put_ok, put_failed;
  std::multiset<std::string> acked;
  std::atomic<bool> producing{true};
  std::vector<uint64_t> sessions;
  for (int c = 0; c < consumers; ++c) sessions.push_back(OpenSession(t, 60'000));

  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      std::mt19937 rng(p * 7919 + 3);
      auto stub = v1::Queues::NewStub(t.NewChannel());
      grpc::CompletionQueue cq;
      for (int i = 0; i < iters; ++i) {
        std::string payload = absl::StrCat("p", p, "-", i);
        v1::PutRequest req;
        req.set_name(name);
        req.add_items()->set_text(payload);
        v1::PutResponse resp;
        grpc::Status s = Raced(
            [&](grpc::ClientContext* ctx, grpc::CompletionQueue* q, grpc::Status* st) {
              auto rpc = stub->PrepareAsyncPut(ctx, req, q);
              rpc->StartCall();
              rpc->Finish(&resp, st, reinterpret_cast<void*>(1));
            },
            rng, cq);
        std::lock_guard<std::mutex> l(mu);
        (s.ok() ? put_ok : put_failed).insert(payload);
      }
    });
  }
  std::vector<std::thread> consumer_threads;
  for (int c = 0; c < consumers; ++c) {
    consumer_threads.emplace_back([&, c] {
      std::mt19937 rng(c * 104729 + 11);
      auto stub = v1::Queues::NewStub(t.NewChannel());
      grpc::CompletionQueue cq;
      while (producing.load()) {
        v1::GetRequest req;
        req.set_name(name);
        req.set_session_id(sessions[c]);
        req.set_max_items(1 + rng() % 3);
        *req.mutable_timeout() = Millis(200);
        v1::GetResponse resp;
        grpc::Status s = Raced(
            [&](grpc::ClientContext* ctx, grpc::CompletionQueue* q, grpc::Status* st) {
              auto rpc = stub->PrepareAsyncGet(ctx, req, q);
              rpc->StartCall();
              rpc->Finish(&resp, st, reinterpret_cast<void*>(1));
            },
            rng, cq);
        if (!s.ok()) continue;
        v1::AckRequest ack;
        ack.set_name(name);
        for (const auto& item : resp.items()) ack.add_receipts(item.receipt());
        v1::AckResponse ar;
        grpc::Status as = stub->Ack(Context().get(), ack, &ar);
        ASSERT_TRUE(as.ok()) << as.error_message();
        std::lock_guard<std::mutex> l(mu);
        for (const auto& item : resp.items()) acked.insert(item.text());
      }
    });
  }
  for (auto& th : threads) th.join();
  producing = false;
  for (auto& th : consumer_threads) th.join();

  // Grants whose replies raced with a client-side deadline are still owned
  // by the consumers' sessions: closing them puts those items back.
  for (uint64_t s : sessions) {
    v1::CloseSessionRequest close;
    close.set_session_id(s);
    v1::CloseSessionResponse cr;
    ASSERT_TRUE(t.sessions->Close(Context().get(), close, &cr).ok());
  }
  // Drain what is left.
  for (;;) {
    v1::GetRequest req;
    req.set_name(name);
    *req.mutable_ttl() = Millis(60'000);
    req.set_max_items(100);
    *req.mutable_timeout() = Millis(0);
    v1::GetResponse resp;
    grpc::Status s = t.queues->Get(Context().get(), req, &resp);
    if (!s.ok()) {
      ASSERT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
      break;
    }
    v1::AckRequest ack;
    ack.set_name(name);
    for (const auto& item : resp.items()) {
      ack.add_receipts(item.receipt());
      acked.insert(item.text());
    }
    v1::AckResponse ar;
    ASSERT_TRUE(t.queues->Ack(Context().get(), ack, &ar).ok());
  }

  for (const std::string& p : put_ok) {
    EXPECT_EQ(acked.count(p), 1u) << "item " << p << " (put OK) acknowledged " << acked.count(p)
                                  << " times";
  }
  for (const std::string& p : put_failed) {
    EXPECT_LE(acked.count(p), 1u) << "item " << p << " (put failed) delivered twice";
  }
  for (const std::string& p : acked) {
    EXPECT_TRUE(put_ok.contains(p) || put_failed.contains(p)) << "unknown item " << p;
  }
  v1::DescribeRequest d;
  d.set_name(name);
  v1::DescribeResponse dr;
  EXPECT_EQ(t.admin->Describe(Context().get(), d, &dr).error_code(), grpc::StatusCode::NOT_FOUND)
      << "queue not reclaimed: " << dr.DebugString();
  size_t rolled_back = 0;
  for (const std::string& p : put_failed) rolled_back += acked.count(p) == 0 ? 1 : 0;
  std::cout << "queue race: " << put_ok.size() << " puts OK, " << put_failed.size() << " failed ("
            << rolled_back << " taken back), " << acked.size() << " acked\n";
}

}  // namespace
}  // namespace baton::testing
