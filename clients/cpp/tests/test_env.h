// Helpers shared by the client tests: one batond for the whole test binary
// (started before the first test, stopped after the last), names unique to
// each test, connecting, and polling for a condition with a deadline.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "absl/time/time.h"
#include "baton/baton.h"
#include "tests/batond_process.h"

namespace baton::testing {

// The shared server.
BatondProcess& SharedServer();
// A resource name unique to the running test: "cpp/<run>/<Suite>.<Test>/<suffix>".
std::string Name(const std::string& suffix = "r");
// Connects to `address` (default: the shared server); fails the test if it
// cannot.
Client MustConnect(const std::string& address = "", ClientOptions options = {});
// Polls `predicate` every 10 ms until it is true or `timeout` passes.
bool Eventually(const std::function<bool()>& predicate, absl::Duration timeout = absl::Seconds(5));
// True once Admin/Describe of `name` says it has no holder (or does not exist).
bool Free(const Client& client, const std::string& name);
// Waiters on `name` now (0 if it does not exist).
uint32_t Waiters(const Client& client, const std::string& name);

}  // namespace baton::testing
