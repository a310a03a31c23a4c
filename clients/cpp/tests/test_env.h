// Helpers shared by the client tests: one batond for the whole test binary
// (started before the first test, stopped after the last), names unique to
// each test, connecting, and polling for a condition with a deadline.
#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "absl/time/time.h"
#include "baton/baton.h"
#include "tests/batond_process.h"

namespace baton::testing {

// The shared server. Under BATON_TEST_SECURE=1 it serves TLS (a CA made
// for the run) and wants a token (principal `suite`, admin on every name),
// so that the suite runs once more as a deployment with security would.
BatondProcess& SharedServer();
bool SecureSuite();
// The transport of the run: kStream, or kUnary under env
// BATON_TEST_TRANSPORT=unary (ctest's cpp_client_unary).
Transport SuiteTransport();
// `options` plus what the shared server needs (TLS and the suite's token
// under SecureSuite), unless they bring their own tls, credentials or token;
// and the run's transport where `options` leave the default (kStream).
ClientOptions SuiteOptions(ClientOptions options = {});
// A raw channel to the shared server (or a proxy of it), and the token for
// a raw call's context (nothing without SecureSuite).
std::shared_ptr<grpc::Channel> SuiteChannel(const std::string& address);
void AddSuiteToken(grpc::ClientContext& context);
// A resource name unique to the running test: "cpp/<run>/<Suite>.<Test>/<suffix>".
std::string Name(const std::string& suffix = "r");
// Connects to `address` (default: the shared server, with SuiteOptions);
// fails the test if it cannot.
Client MustConnect(const std::string& address = "", ClientOptions options = {});
// Polls `predicate` every 10 ms until it is true or `timeout` passes.
bool Eventually(const std::function<bool()>& predicate, absl::Duration timeout = absl::Seconds(5));
// True once Admin/Describe of `name` says it has no holder (or does not exist).
bool Free(const Client& client, const std::string& name);
// Waiters on `name` now (0 if it does not exist).
uint32_t Waiters(const Client& client, const std::string& name);

}  // namespace baton::testing
