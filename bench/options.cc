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
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--workload: want uncontended, contended or queue, got '", value, "'"));
  }
  return absl::OkStatus();
}

// Lock workloads need a lock service, the queue workload a queue.
absl::Status CheckTargetRunsWorkload(const Options& options) {
  const bool queue_target =
      options.target == Target::kRedis || options.target == Target::kBeanstalkd;
  const bool lock_target = options.target == Target::kEcho || options.target == Target::kEtcd;
  if ((options.workload == Workload::kQueue && lock_target) ||
      (options.workload != Workload::kQueue && queue_target)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--target ", TargetName(options.target), " does not run --workload ",
                     WorkloadName(options.workload),
                     " (queue: baton, redis, beanstalkd; uncontended, contended: baton, echo, "
                     "etcd)"));
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
ceiling and etcd (locks), redis and beanstalkd (queues).

N clients, each one thread with its own connection, run blocking calls for a
fixed window after a warm-up: acquire+release cycles (lock workloads), or N
producers putting and N consumers getting+acknowledging items (queue).

  --target T            server under test (default baton): baton, echo, etcd
                        (lock workloads); baton, redis, beanstalkd (queue)
  --addr HOST:PORT      its address (default 127.0.0.1:7411)
  --workload W          uncontended: own lock per client; contended: one
                        shared lock; queue: one shared queue, bench/q
                        (default uncontended)
  --clients N           concurrent clients; queue: N producers and N
                        consumers (default 1)
  --seconds S           measured window (default 3)
  --warmup S            unmeasured lead-in (default 0.5)
  --call-timeout S      deadline of each call (default 30)
  --backlog N           queue: most items a producer has put and no consumer
                        has got yet; 0: no limit (default 1)
  --queue-stream        queue, baton: consumers read a Queues/Consume stream
                        and acknowledge in batches of 8
  --json                one JSON line per result
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
  }
  return "?";
}

}  // namespace baton::bench
