#include "service/rpc/call_stats.h"

#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"

namespace baton::rpc {
namespace {

struct Registry {
  std::mutex mu;
  // By (method, transport), in name order for a stable exposition.
  std::map<std::pair<std::string, std::string>, std::unique_ptr<CallStats>> stats;
};

Registry& TheRegistry() {
  static Registry* r = new Registry();
  return *r;
}

// "Locks/Acquire" for baton.v1.AcquireLockRequest: the method of a baton.v1
// service that takes it; else the request's own name.
std::string MethodOf(const google::protobuf::Descriptor* request) {
  const google::protobuf::FileDescriptor* file = request->file();
  const google::protobuf::DescriptorPool* pool = file->pool();
  for (const char* service : {"Sessions", "Locks", "Semaphores", "Events", "Queues", "Futures",
                              "Barriers", "Conditions", "Timers", "Tasks", "Admin", "Stream"}) {
    const auto* s = pool->FindServiceByName(absl::StrCat("baton.v1.", service));
    if (s == nullptr) continue;
    for (int i = 0; i < s->method_count(); ++i) {
      if (s->method(i)->input_type() == request)
        return absl::StrCat(service, "/", s->method(i)->name());
    }
  }
  return std::string(request->name());
}

constexpr const char* kCodeNames[17] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

}  // namespace

CallStats::CallStats(std::string method, const char* transport)
    : method_(std::move(method)), transport_(transport) {}

CallStats* CallStats::For(const google::protobuf::Descriptor* request, const char* transport) {
  Registry& r = TheRegistry();
  std::string method = MethodOf(request);
  std::lock_guard<std::mutex> lock(r.mu);
  auto& slot = r.stats[{method, transport}];
  if (slot == nullptr) slot.reset(new CallStats(method, transport));
  return slot.get();
}

void CallStats::WriteAll(metrics::TextWriter& out) {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  out.Family("baton_rpc_calls_total", "counter",
             "Calls finished, by method, transport (unary: a gRPC call; stream: an operation on "
             "a session stream) and status code.");
  for (const auto& [key, s] : r.stats) {
    for (size_t i = 0; i < s->codes_.size(); ++i) {
      uint64_t n = s->codes_[i].load(std::memory_order_relaxed);
      if (n == 0 && i != 0) continue;
      out.Sample("baton_rpc_calls_total",
                 {{"method", s->method_}, {"transport", s->transport_}, {"code", kCodeNames[i]}},
                 static_cast<double>(n));
    }
  }
  out.Family("baton_rpc_duration_seconds", "histogram",
             "Time from a unary call's arrival to its answer, waiting included, by method.");
  for (const auto& [key, s] : r.stats) {
    if (std::string(s->transport_) != "unary") continue;
    out.Histogram("baton_rpc_duration_seconds", {{"method", s->method_}}, s->latency_.Read(), 1e-9);
  }
}

}  // namespace baton::rpc
