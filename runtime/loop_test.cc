// Loop: the order in which it runs posted work, deferred work and events.
#include "runtime/loop.h"

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

namespace baton::runtime {
namespace {

// A completion-queue event that records itself.
class Recorder final : public CqTag {
 public:
  Recorder(std::vector<std::string>* log, std::string name) : log_(log), name_(std::move(name)) {}
  void OnComplete(bool) override { log_->push_back(name_); }

 private:
  std::vector<std::string>* log_;
  std::string name_;
};

// A timer source that, once armed, holds the loop inside OnTimer until
// released: the test makes things ready while the loop cannot see them.
class HoldingTimers final : public TimerSource {
 public:
  Time NextDeadline() const override { return armed_.load() ? 0 : kForever; }
  void OnTimer(Time) override {
    armed_ = false;
    held_.set_value();
    release_.get_future().wait();
  }
  // Test thread: arms, and returns once the loop is held.
  void Hold(Loop& loop) {
    held_ = {};
    release_ = {};
    armed_ = true;
    loop.Post([] {});  // wakes the loop, which then checks its timers
    held_.get_future().wait();
  }
  void Release() { release_.set_value(); }

 private:
  std::atomic<bool> armed_{false};
  std::promise<void> held_;
  std::promise<void> release_;
};

class LoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    auto cq = builder.AddCompletionQueue();
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    loop_ = std::make_unique<Loop>(0, std::move(cq), &clock_);
    loop_->SetTimerSource(&timers_);
    thread_ = std::thread([this] { loop_->Run(); });
  }
  void TearDown() override {
    if (!shut_down_) ShutDown();
    thread_.join();
  }
  void ShutDown() {
    shut_down_ = true;
    server_->Shutdown();
    loop_->ShutdownQueue();
  }

  // Runs `f` on the loop thread and waits for it.
  template <class F>
  void OnLoop(F f) {
    std::promise<void> done;
    loop_->Post([&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }

  WallClock clock_;
  HoldingTimers timers_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Loop> loop_;
  std::thread thread_;
  bool shut_down_ = false;
};

// Work that posted work defers runs before the event the loop takes with it:
// a session stream defers its write while handling a reply posted by another
// shard, and the call's end may be the event of the same turn.
TEST_F(LoopTest, WorkDeferredByPostedWorkRunsBeforeTheEventOfTheSameTurn) {
  for (int round = 0; round < 20; ++round) {
    std::vector<std::string> log;  // written on the loop thread only
    Recorder event(&log, "event");
    grpc::Alarm alarm;
    // While the loop is held, an event becomes ready and work is posted
    // (which arms the loop's wake-up alarm, after the event): the loop's next
    // sleep returns the event with the posted work waiting.
    timers_.Hold(*loop_);
    alarm.Set(loop_->cq(), gpr_time_0(GPR_CLOCK_MONOTONIC), AsTag(&event));
    loop_->Post([&] {
      log.push_back("posted");
      loop_->Defer([&] { log.push_back("deferred"); });
    });
    timers_.Release();
    for (bool seen = false; !seen;) OnLoop([&] { seen = log.size() == 3; });
    ASSERT_EQ(log, (std::vector<std::string>{"posted", "deferred", "event"})) << "round " << round;
  }
}

TEST_F(LoopTest, DeferredWorkMayDeferMoreAndAllOfItRunsInOrder) {
  std::promise<std::vector<int>> out;
  loop_->Post([&] {
    auto* order = new std::vector<int>;
    loop_->Defer([this, order] {
      order->push_back(1);
      loop_->Defer([order] { order->push_back(3); });
    });
    loop_->Defer([order] { order->push_back(2); });
    loop_->Defer([this, order, &out] {
      // Runs after 1 and 2, and before 3 (deferred later).
      loop_->Defer([order, &out] {
        out.set_value(*order);
        delete order;
      });
    });
  });
  EXPECT_EQ(out.get_future().get(), (std::vector<int>{1, 2, 3}));
}

// gRPC aborts the process when an operation starts on a shut-down queue; work
// that drains after ShutdownQueue (a coroutine in flight) must be told no.
TEST_F(LoopTest, NoOperationStartsOnTheLoopsQueueOnceItIsShutDown) {
  std::promise<bool> before;
  OnLoop([&] {
    loop_->AddInFlight();  // keeps the loop serving posted work after the queue drains
    bool ran = false;
    before.set_value(
        StartUnlessQueueShutDown([](void* r) { *static_cast<bool*>(r) = true; }, &ran) && ran);
  });
  EXPECT_TRUE(before.get_future().get());
  ShutDown();
  std::promise<bool> after;
  loop_->Post([&] {
    after.set_value(StartUnlessQueueShutDown([](void*) { ADD_FAILURE() << "started"; }, nullptr));
    loop_->RemoveInFlight();
  });
  EXPECT_FALSE(after.get_future().get());
}

}  // namespace
}  // namespace baton::runtime
