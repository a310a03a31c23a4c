// Task cancellation races over real gRPC: workers whose Take calls are
// cancelled, or whose deadlines pass, at random moments. Afterwards every
// task succeeded exactly once: a Take whose reply was lost gave its task back
// (the attempt not counted), and a worker that holds a task it never heard
// of loses it when its session ends.
//
// Iterations: BATON_RACE_ITERS tasks (default 600), 4 workers.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "integration/test_server.h"

namespace baton::testing {
namespace {

int Tasks() {
  const char* env = std::getenv("BATON_RACE_ITERS");
  return env != nullptr ? std::max(1, atoi(env)) : 600;
}

TEST(TaskRaceTest, EveryTaskSucceedsExactlyOnce) {
  TestServer t;
  const std::string queue = "race/tasks";
  const int n = Tasks(), workers = 4;
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    v1::SubmitTaskRequest s;
    s.set_queue(queue);
    s.set_text(absl::StrCat("job-", i));
    s.set_max_attempts(50);
    v1::SubmitTaskResponse sr;
    ASSERT_TRUE(t.tasks->Submit(Context().get(), s, &sr).ok());
    ids.push_back(sr.task_id());
  }
  std::mutex mu;
  std::map<std::string, int> completed;  // task id -> successful Completes
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937 rng(w * 31337 + 5);
      auto stub = v1::Tasks::NewStub(t.NewChannel());
      grpc::CompletionQueue cq;
      uint64_t session = OpenSession(t, 60'000);
      int rounds = 0;
      while (done.load() < n && rounds++ < 50 * n) {
        v1::TakeTaskRequest take;
        take.set_queue(queue);
        take.set_session_id(session);
        *take.mutable_timeout() = Millis(100);
        v1::TakeTaskResponse taken;
        grpc::ClientContext ctx;
        int fate = static_cast<int>(rng() % 3);
        auto delay = std::chrono::microseconds(rng() % 4 == 0 ? rng() % 3000 : rng() % 300);
        ctx.set_deadline(std::chrono::system_clock::now() +
                         (fate == 2 ? delay : std::chrono::microseconds(10'000'000)));
        grpc::Status status;
        auto rpc = stub->PrepareAsyncTake(&ctx, take, &cq);
        rpc->StartCall();
        rpc->Finish(&taken, &status, reinterpret_cast<void*>(1));
        if (fate == 1) {
          std::this_thread::sleep_for(delay);
          ctx.TryCancel();
        }
        void* tag;
        bool ok;
        ASSERT_TRUE(cq.Next(&tag, &ok));
        if (!status.ok()) {
          EXPECT_TRUE(status.error_code() == grpc::StatusCode::CANCELLED ||
                      status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
              << "Take ended with code " << status.error_code() << ": " << status.error_message();
          if (rng() % 8 == 0) {
            // Now and then start over with a new session: whatever the old
            // one holds without knowing it is lost and retried.
            v1::CloseSessionRequest close;
            close.set_session_id(session);
            v1::CloseSessionResponse cr;
            t.sessions->Close(Context().get(), close, &cr);
            session = OpenSession(t, 60'000);
          }
          continue;
        }
        v1::CompleteTaskRequest c;
        c.set_task_id(taken.task_id());
        c.set_attempt(taken.attempt());
        c.set_text("ok");
        v1::CompleteTaskResponse cr;
        grpc::Status cs = stub->Complete(Context().get(), c, &cr);
        ASSERT_TRUE(cs.ok()) << taken.task_id() << ": " << cs.error_message();
        std::lock_guard<std::mutex> l(mu);
        if (++completed[taken.task_id()] == 1) ++done;
      }
      v1::CloseSessionRequest close;
      close.set_session_id(session);
      v1::CloseSessionResponse cr;
      t.sessions->Close(Context().get(), close, &cr);
    });
  }
  for (auto& th : threads) th.join();
  for (const std::string& id : ids) {
    EXPECT_EQ(completed[id], 1) << id << " completed " << completed[id] << " times";
    v1::AwaitTaskRequest a;
    a.set_task_id(id);
    *a.mutable_timeout() = Millis(0);
    v1::TaskOutcome o;
    grpc::Status s = t.tasks->Await(Context().get(), a, &o);
    ASSERT_TRUE(s.ok()) << id << ": " << s.error_message();
    EXPECT_EQ(o.state(), v1::TASK_STATE_SUCCEEDED) << id;
  }
  std::cout << "task race: " << n << " tasks, " << done.load() << " completed once\n";
}

}  // namespace
}  // namespace baton::testing
