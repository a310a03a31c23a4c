// Parsing of baton-bench's flags into Options.
#include "bench/options.h"

#include <cmath>
#include <functional>
#include <map>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace baton::bench {
namespace {

absl::Status ParseDouble(absl::string_view flag, absl::string_view value, double min, double max,
                         double* out) {
  double parsed = 0;
  if (!absl::SimpleAtod(value, &parsed) || !std::isfinite(parsed) || parsed < min || parsed > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": want a number in [", min, ", ", max, "], got '", value, "'"));
  }
  *out = parsed;
  return absl::OkStatus();
}

absl::Status ParseTarget(absl::string_view value, Target* out) {
  if (value == "baton") {
    *out = Target::kBaton;
  } else if (value == "echo") {
    *out = Target::kEcho;
  } else if (value == "etcd") {
    *out = Target::kEtcd;
  } else if (value == "redis") {
    *out = Target::kRedis;
  } else if (value == "beanstalkd") {
    *out = Target::kBeanstalkd;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--target: want baton, echo, etcd, redis or beanstalkd, got '", value, "'"));
  }
  return absl::OkStatus();
}

absl::Status ParseWorkload(absl::string_view value, Workload* out) {
  if (value == "uncontended") {
    *out = Workload::kUncontended;
  } else if (value == "contended") {
    *out = Workload::kContended;
  } else if (value == "queue") {
    *out = Workload::kQueue;
  } else if (value == "waits") {
    *out = Workload::kWaits;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--workload: want uncontended, contended, queue or waits, got '", value, "'"));
  }
  return absl::OkStatus();
}

absl::Status ParseSessionStream(absl::string_view value, SessionStreamMode* out) {
  if (value == "off") {
    *out = SessionStreamMode::kOff;
  } else if (value == "per-client") {
    *out = SessionStreamMode::kPerClient;
  } else if (value == "shared") {
    *out = SessionStreamMode::kShared;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--session-stream: want off, per-client or shared, got '", value, "'"));
  }
  return absl::OkStatus();
}

absl::Status ParseWaitKind(absl::string_view value, WaitKind* out) {
  if (value == "event") {
    *out = WaitKind::kEvent;
  } else if (value == "lock") {
    *out = WaitKind::kLock;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--wait-kind: want event or lock, got '", value, "'"));
  }
  return absl::OkStatus();
}

absl::Status ParseInt(absl::string_view flag, absl::string_view value, int min, int max, int* out) {
  int parsed = 0;
  if (!absl::SimpleAtoi(value, &parsed) || parsed < min || parsed > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": want an integer in [", min, ", ", max, "], got '", value, "'"));
  }
  *out = parsed;
  return absl::OkStatus();
}

// Lock workloads need a lock service, the queue workload a queue; session
// streams and the waits workload are Baton's.
absl::Status CheckTargetRunsWorkload(const Options& options) {
  const bool lock_target = options.target == Target::kBaton || options.target == Target::kEcho ||
                           options.target == Target::kEtcd || options.target == Target::kRedis;
  const bool queue_target = options.target == Target::kBaton || options.target == Target::kRedis ||
                            options.target == Target::kBeanstalkd;
  const bool runs = options.workload == Workload::kQueue   ? queue_target
                    : options.workload == Workload::kWaits ? options.target == Target::kBaton
                                                           : lock_target;
  if (!runs) {
    return absl::InvalidArgumentError(
        absl::StrCat("--target ", TargetName(options.target), " does not run --workload ",
                     WorkloadName(options.workload),
                     " (queue: baton, redis, beanstalkd; uncontended, contended: baton, echo, "
                     "etcd, redis; waits: baton)"));
  }
  if (options.session_stream != SessionStreamMode::kOff && options.target != Target::kBaton) {
    return absl::InvalidArgumentError("--session-stream: only --target baton has session streams");
  }
  if (options.backlog != 0 && options.backlog < options.batch) {
    return absl::InvalidArgumentError(absl::StrCat("--backlog ", options.backlog,
                                                   " is below --batch ", options.batch,
                                                   ": a producer could never put a batch"));
  }
  if (options.session_stream != SessionStreamMode::kOff && options.queue_stream) {
    return absl::InvalidArgumentError("--queue-stream and --session-stream exclude each other");
  }
  if (options.workload == Workload::kWaits) {
    if (options.server_pid <= 0) {
      return absl::InvalidArgumentError("--workload waits needs --server-pid of batond");
    }
    if (options.session_stream == SessionStreamMode::kPerClient) {
      return absl::InvalidArgumentError(
          "--workload waits parks its waits on one stream: --session-stream shared (or off for "
          "unary calls)");
    }
    if (options.wait_names > options.waits) {
      return absl::InvalidArgumentError("--wait-names: more names than --waits");
    }
  }
  return absl::OkStatus();
}

using Setter = std::function<absl::Status(absl::string_view)>;

}  // namespace

absl::StatusOr<Options> ParseOptions(const std::vector<absl::string_view>& args) {
  Options options;
  // Flags that take a value.
  const std::map<absl::string_view, Setter> setters = {
      {"target", [&](absl::string_view v) { return ParseTarget(v, &options.target); }},
      {"addr",
       [&](absl::string_view v) {
         if (v.empty()) return absl::InvalidArgumentError("--addr: empty");
         options.addr = std::string(v);
         return absl::OkStatus();
       }},
      {"workload", [&](absl::string_view v) { return ParseWorkload(v, &options.workload); }},
      {"clients",
       [&](absl::string_view v) {
         if (!absl::SimpleAtoi(v, &options.clients) || options.clients < 1 ||
             options.clients > 1024) {
           return absl::InvalidArgumentError(
               absl::StrCat("--clients: want an integer in [1, 1024], got '", v, "'"));
         }
         return absl::OkStatus();
       }},
      {"seconds",
       [&](absl::string_view v) {
         return ParseDouble("seconds", v, 0.01, 3600, &options.seconds);
       }},
      {"warmup",
       [&](absl::string_view v) { return ParseDouble("warmup", v, 0, 600, &options.warmup); }},
      {"call_timeout",
       [&](absl::string_view v) {
         return ParseDouble("call_timeout", v, 0.01, 3600, &options.call_timeout);
       }},
      {"backlog",
       [&](absl::string_view v) {
         if (!absl::SimpleAtoi(v, &options.backlog) || options.backlog < 0 ||
             options.backlog > 1000000) {
           return absl::InvalidArgumentError(
               absl::StrCat("--backlog: want an integer in [0, 1000000], got '", v, "'"));
         }
         return absl::OkStatus();
       }},
      {"batch", [&](absl::string_view v) { return ParseInt("batch", v, 1, 1000, &options.batch); }},
      {"session_stream",
       [&](absl::string_view v) { return ParseSessionStream(v, &options.session_stream); }},
      {"waits",
       [&](absl::string_view v) { return ParseInt("waits", v, 1, 1000000, &options.waits); }},
      {"wait_names",
       [&](absl::string_view v) {
         return ParseInt("wait-names", v, 1, 100000, &options.wait_names);
       }},
      {"wait_kind", [&](absl::string_view v) { return ParseWaitKind(v, &options.wait_kind); }},
      {"server_pid",
       [&](absl::string_view v) {
         return ParseInt("server-pid", v, 1, 1 << 30, &options.server_pid);
       }},
  };

  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg.substr(0, 2) != "--") {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", arg, "'"));
    }
    absl::string_view name = arg.substr(2);
    std::optional<absl::string_view> value;
    if (size_t eq = name.find('='); eq != absl::string_view::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    std::string key(name);
    for (char& c : key) {
      if (c == '-') c = '_';  // --call-timeout and --call_timeout alike.
    }
    if (key == "json" || key == "help" || key == "queue_stream") {
      if (value.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
      }
      (key == "json" ? options.json : key == "help" ? options.help : options.queue_stream) = true;
      continue;
    }
    auto setter = setters.find(key);
    if (setter == setters.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    if (!value.has_value()) {
      if (i + 1 == args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      }
      value = args[++i];
    }
    if (absl::Status status = setter->second(*value); !status.ok()) return status;
  }
  if (absl::Status status = CheckTargetRunsWorkload(options); !status.ok()) return status;
  return options;
}

std::string Usage() {
  return R"(baton-bench: load generator for Baton and its peers: the gRPC echo
ceiling, etcd and redis (locks), redis and beanstalkd (queues).

N clients, each one thread with its own connection, run blocking calls for a
fixed window after a warm-up: acquire+release cycles (lock workloads), or N
producers putting and N consumers getting+acknowledging items (queue).

  --target T            server under test (default baton): baton, echo, etcd,
                        redis (lock workloads); baton, redis, beanstalkd
                        (queue)
  --addr HOST:PORT      its address (default 127.0.0.1:7411)
  --workload W          uncontended: own lock per client; contended: one
                        shared lock; queue: one shared queue, bench/q;
                        waits: batond's memory with parked waits (see below)
                        (default uncontended)
  --clients N           concurrent clients; queue: N producers and N
                        consumers (default 1)
  --seconds S           measured window (default 3)
  --warmup S            unmeasured lead-in (default 0.5)
  --call-timeout S      deadline of each call (default 30)
  --backlog N           queue: most items a producer has put and no consumer
                        has got yet; 0: no limit (default 1)
  --batch N             queue: items per put and most items per get (baton:
                        one Put of N items, Gets of up to N that carry the
                        acks of the previous ones; beanstalkd: N commands
                        per write; redis: LPUSH of N values) (default 1)
  --queue-stream        queue, baton: consumers read a Queues/Consume stream
                        and acknowledge in batches of 8
  --session-stream M    baton: off (unary calls, default); per-client: each
                        client its own channel and Stream/Connect; shared:
                        every client of the process on one channel and one
                        Stream/Connect (lock workloads: clients are state
                        machines driven by the stream's reader thread)
  --json                one JSON line per result

Waits workload (bench/memory.sh): parks --waits N waits (default 100000) on
--wait-names K names (default 100) of --wait-kind event|lock (default event),
on one session stream (--session-stream shared) or as unary calls spread over
--clients channels, checks with Admin/Describe that all are pending, reads
VmRSS of --server-pid PID before and after, then ends every wait (sets the
events; cancels the lock waits) and checks each was answered.
)";
}

absl::string_view TargetName(Target target) {
  switch (target) {
    case Target::kBaton:
      return "baton";
    case Target::kEcho:
      return "echo";
    case Target::kEtcd:
      return "etcd";
    case Target::kRedis:
      return "redis";
    case Target::kBeanstalkd:
      return "beanstalkd";
  }
  return "?";
}

absl::string_view WorkloadName(Workload workload) {
  switch (workload) {
    case Workload::kUncontended:
      return "uncontended";
    case Workload::kContended:
      return "contended";
    case Workload::kQueue:
      return "queue";
    case Workload::kWaits:
      return "waits";
  }
  return "?";
}

absl::string_view SessionStreamName(SessionStreamMode mode) {
  switch (mode) {
    case SessionStreamMode::kOff:
      return "off";
    case SessionStreamMode::kPerClient:
      return "per-client";
    case SessionStreamMode::kShared:
      return "shared";
  }
  return "?";
}

absl::string_view WaitKindName(WaitKind kind) {
  switch (kind) {
    case WaitKind::kEvent:
      return "event";
    case WaitKind::kLock:
      return "lock";
  }
  return "?";
}

}  // namespace baton::bench
