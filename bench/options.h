// Command-line options of baton-bench: which server to load, with which
// workload, how many clients and for how long.
#ifndef BATON_BENCH_OPTIONS_H_
#define BATON_BENCH_OPTIONS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace baton::bench {

// The server under test. Every target is driven by the same client loop.
// The lock workloads run against baton, echo, etcd and redis; the queue
// workload against baton, redis and beanstalkd.
enum class Target {
  kBaton,       // batond: Sessions/Open once, then Locks/Acquire + Locks/Release
                // (lock workloads) or Queues/Put, Queues/Get + Queues/Ack (queue);
                // or the same operations over session streams (--session-stream).
  kEcho,        // baton-echo: two Echo calls stand in for acquire + release.
  kEtcd,        // etcd v3.4: Lease/LeaseGrant once, then Lock/Lock + Lock/Unlock.
  kRedis,       // redis-server over RESP: SET NX PX + compare-and-delete script
                // (locks; contended: polling); LPUSH, and BRPOP (queue).
  kBeanstalkd,  // beanstalkd: put, and reserve-with-timeout + delete.
};

enum class Workload {
  kUncontended,  // Each client locks and unlocks a name of its own.
  kContended,    // All clients lock and unlock one shared name.
  kQueue,        // `clients` producers and `clients` consumers share one queue.
  kWaits,        // Not a rate: parks `waits` blocking waits on batond and
                 // measures its memory (bench/memory.sh).
};

// How Baton's clients carry their operations.
enum class SessionStreamMode {
  kOff,        // Unary calls (and Queues/Consume with --queue-stream).
  kPerClient,  // Each client: its own channel and one Stream/Connect.
  kShared,     // All clients of the process: one channel, one Stream/Connect.
};

// What the waits workload parks.
enum class WaitKind {
  kEvent,  // wait_event / Events/Wait on events nobody sets yet.
  kLock,   // acquire_lock / Locks/Acquire on locks another session holds.
};

struct Options {
  Target target = Target::kBaton;
  // host:port of the server under test.
  std::string addr = "127.0.0.1:7411";
  Workload workload = Workload::kUncontended;
  // Concurrent clients; each is one thread with its own gRPC channel (or TCP
  // connection). The queue workload runs this many producers and as many
  // consumers.
  int clients = 1;
  // Length of the measured window, in seconds.
  double seconds = 3.0;
  // Unmeasured load before the window, in seconds.
  double warmup = 0.5;
  // Deadline of every single RPC, in seconds; bounds how long a stuck server
  // can hold the tool.
  double call_timeout = 30.0;
  // Queue workload: most items one producer may have put that no consumer
  // has got yet; the producer waits before its next put while it has that
  // many. 0: no limit (the queue may grow for as long as producers outrun
  // consumers, and put-to-get latency with it).
  int backlog = 1;
  // Queue workload: items a producer puts at once, and most items a
  // consumer takes at once. Baton: one Put of N items, and a Get of up to N
  // that carries the acknowledgements of the previous ones
  // (GetRequest.ack); beanstalkd: N puts, and a consumer's deletes, sent in
  // one write (pipelined); Redis: one LPUSH of N values. 1: one at a time.
  int batch = 1;
  // Queue workload, Baton: consumers read a Queues/Consume stream (prefetch
  // window) and acknowledge in batches, instead of Get + Ack per item.
  bool queue_stream = false;
  // Baton: unary calls, or session streams (one per client, or one shared).
  SessionStreamMode session_stream = SessionStreamMode::kOff;
  // Waits workload: how many waits to park, spread over how many names,
  // waiting for what, and the pid of the batond whose VmRSS is read. Unary
  // waits (no --session-stream) are spread over `clients` channels.
  int waits = 100000;
  int wait_names = 100;
  WaitKind wait_kind = WaitKind::kEvent;
  int server_pid = 0;
  // Print one JSON object per result instead of text.
  bool json = false;
  // --help was given: print Usage() and exit successfully.
  bool help = false;
};

// Parses argv (without argv[0]). Accepts "--flag value" and "--flag=value".
// Errors: INVALID_ARGUMENT naming the bad flag or value, or a target that
// does not run the workload.
absl::StatusOr<Options> ParseOptions(const std::vector<absl::string_view>& args);

// Returns the --help text.
std::string Usage();

absl::string_view TargetName(Target target);
absl::string_view WorkloadName(Workload workload);
absl::string_view SessionStreamName(SessionStreamMode mode);
absl::string_view WaitKindName(WaitKind kind);

}  // namespace baton::bench

#endif  // BATON_BENCH_OPTIONS_H_
