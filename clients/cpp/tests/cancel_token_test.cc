// CancelToken on its own: callbacks run once, on the cancelling thread or at
// once when registered late; a dropped registration is not called.
#include "baton/cancel_token.h"

#include <gtest/gtest.h>

#include <thread>

namespace baton {
namespace {

TEST(CancelTokenTest, CallbacksRunOnceOnCancel) {
  CancelToken token;
  int runs = 0;
  auto registration = token.OnCancel([&] { ++runs; });
  EXPECT_FALSE(token.cancelled());
  CancelToken copy = token;
  std::thread([copy] { copy.Cancel(); }).join();
  EXPECT_TRUE(token.cancelled());
  EXPECT_EQ(runs, 1);
  token.Cancel();
  EXPECT_EQ(runs, 1);
}

TEST(CancelTokenTest, LateRegistrationRunsAtOnce) {
  CancelToken token;
  token.Cancel();
  bool ran = false;
  auto registration = token.OnCancel([&] { ran = true; });
  EXPECT_TRUE(ran);
}

TEST(CancelTokenTest, DroppedRegistrationIsNotCalled) {
  CancelToken token;
  bool ran = false;
  {
    auto registration = token.OnCancel([&] { ran = true; });
  }
  token.Cancel();
  EXPECT_FALSE(ran);
}

TEST(CancelTokenTest, TokensAreIndependent) {
  CancelToken a, b;
  a.Cancel();
  EXPECT_FALSE(b.cancelled());
}

}  // namespace
}  // namespace baton
