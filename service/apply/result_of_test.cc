// TakeResult: a result reaches its handler as the command's own type, and a
// mismatch is an error the handler can answer, not a crash.
#include "service/apply/result_of.h"

#include <gtest/gtest.h>

#include <string>

namespace baton::apply {
namespace {

TEST(ResultOfTest, AnOkResultIsTheCommandsOwnType) {
  auto r = TakeResult<AckItems>(Result::Ok(Acked{3, 7}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->acked, 3u);
  EXPECT_EQ(r->unfinished, 7u);
}

TEST(ResultOfTest, ABoxedResultIsUnboxed) {
  SessionInfo info;
  info.session = 42;
  info.label = std::string("worker");
  auto r = TakeResult<OpenSession>(Result::Ok(info));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->session, 42u);
  EXPECT_EQ(r->label, "worker");
}

TEST(ResultOfTest, AnErrorKeepsItsStatus) {
  auto r = TakeResult<AcquirePermits>(Result::Error(absl::DeadlineExceededError("timed out")));
  EXPECT_EQ(r.status(), absl::DeadlineExceededError("timed out"));
}

TEST(ResultOfTest, AResultOfAnotherCommandIsInternalNotACrash) {
  // CancelTimer's result given to a CancelTask handler: the fields would
  // mean other things (the punning this type check exists to prevent).
  auto r = TakeResult<CancelTask>(Result::Ok(TimerCancelled{true, 3}));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(r.status().message().find("wrong type"), std::string::npos);
}

TEST(ResultOfTest, AnswerRepliesToTheOrigin) {
  Reply reply = Answer(PurgeQueue{}, OpRef{0, 9}, Purged{4});
  EXPECT_EQ(reply.op.id, 9u);
  EXPECT_EQ(std::get<Purged>(reply.result.value).purged, 4u);
}

}  // namespace
}  // namespace baton::apply
