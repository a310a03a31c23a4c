// The waits workload (baton-bench --workload waits, run by bench/memory.sh):
// what a pending blocking wait costs batond in memory.
//
//   1. setup: a session for the waits (the stream's, or Sessions/Open for
//      unary calls); for --wait-kind lock, a second session that holds every
//      lock waited for; a warm-up round of the same shape on other names
//      (1% of the waits), ended as below, so one-time costs (first use of a
//      code path, allocator pools) fall before the baseline
//   2. VmRSS of --server-pid (the baseline)
//   3. parks --waits waits over --wait-names names (name i gets wait i mod
//      names): wait_event / acquire_lock operations on one session stream,
//      or Events/Wait / Locks/Acquire calls from async clients spread over
//      --clients channels; then polls Admin/Describe until every name shows
//      its waiters
//   4. VmRSS again: bytes per wait = (this - baseline) / waits
//   5. ends every wait: sets each event (every wait must answer OK), or
//      cancels each lock wait (every one must answer CANCELLED); counts the
//      answers
//   6. VmRSS once more (what the allocator kept)
//
// Every step is bounded (Admin polling 60 s, answers 120 s, streams and calls
// 10 minutes). RSS is read after a short pause, as the server settles.
#ifndef BATON_BENCH_WAITS_MEMORY_H_
#define BATON_BENCH_WAITS_MEMORY_H_

#include "bench/options.h"

namespace baton::bench {

// Runs the waits workload and prints its report (text, or one JSON line
// with --json). Returns the process exit status: 0 when every wait was seen
// pending and answered as expected, 1 otherwise.
int RunWaitsMemory(const Options& options);

}  // namespace baton::bench

#endif  // BATON_BENCH_WAITS_MEMORY_H_
