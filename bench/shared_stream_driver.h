// "Many users, one connection": the lock workloads with every client of the
// process on one gRPC channel and one session stream (baton-bench
// --session-stream shared).
//
// A user is not a thread but a small state machine, acquire -> release ->
// acquire ..., driven by the SharedStream's reader thread, the way the
// coroutines of an asyncio program share one connection: when an answer
// arrives, its user records what it measured and starts its next
// operation, and every operation started while the reader dispatches one
// message of answers goes out in one message. Operations are told apart by
// id, so a user waiting in line for a lock holds nobody else up.
//
// The timeline and what is counted are the thread driver's (driver.h):
// warm-up, window, then each user finishes the cycle it is in. Fencing is
// checked as answers arrive: a user's grants carry increasing tokens, and
// so do the grants of the one contended lock, in the order they arrive.
#ifndef BATON_BENCH_SHARED_STREAM_DRIVER_H_
#define BATON_BENCH_SHARED_STREAM_DRIVER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "bench/driver.h"
#include "bench/options.h"
#include "bench/session_stream.h"

namespace baton::bench {

// Connects a channel of its own to options.addr and opens a session stream
// on it, open until StreamDeadline(options) at most.
absl::StatusOr<std::unique_ptr<SharedStream>> OpenSharedStream(const Options& options);

// Sets result's batching figures from the stream's traffic.
void SetBatching(const SharedStream::Stats& stats, Result* result);

// Runs the lock workload of `options` with options.clients users on one
// shared stream. Never fails as a whole: errors are reported in the result.
Result RunSharedStreamLockBenchmark(const Options& options);

}  // namespace baton::bench

#endif  // BATON_BENCH_SHARED_STREAM_DRIVER_H_
