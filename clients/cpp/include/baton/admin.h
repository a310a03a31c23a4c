// Admin: inspection of every resource on the server (baton.v1.Admin), for
// operators, tools and tests.
//
//   auto info = client.Admin().Describe("billing/nightly-migration");
//   if (info.ok() && !info->holders.empty()) { ... info->holders[0].session_id ... }
//
// Thread safety: a cheap, copyable handle; any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "baton/call.h"
#include "baton/v1/admin.pb.h"

namespace baton {

namespace internal {
class Core;
}  // namespace internal

enum class ResourceKind {
  kUnspecified,
  kLock,
  kSemaphore,
  kEvent,
  kQueue,
  kFuture,
  kBarrier,
  kTimer,
  kTasks,
};

struct ResourceSummary {
  std::string name{};
  ResourceKind kind = ResourceKind::kUnspecified;
  uint32_t holders = 0;
  uint32_t waiters = 0;
};

// One holding of a lock or semaphore (or a running task of a work queue).
struct HolderInfo {
  uint64_t token = 0;
  uint64_t session_id = 0;  // 0: lease only
  int64_t count = 0;
  absl::Duration held_for{};
  std::optional<absl::Duration> expires_in{};
  std::string request_id{};  // work queues: the task id
};

// Admin/Describe of one resource: the fields common to every kind, plus the
// full reply (`proto`) for the kind-specific ones (queue, barrier, timer,
// tasks, conditions, future).
struct ResourceInfo {
  std::string name{};
  ResourceKind kind = ResourceKind::kUnspecified;
  std::vector<HolderInfo> holders{};
  uint32_t waiters = 0;
  int64_t capacity = 0;   // semaphores
  int64_t available = 0;  // semaphores
  bool event_set = false;
  uint64_t last_token = 0;
  v1::DescribeResponse proto{};
};

struct ListOptions {
  std::optional<ResourceKind> kind{};
  std::string prefix{};
};

class Admin {
 public:
  // Every live resource (of `kind`, under `prefix`), in name order; all pages.
  absl::StatusOr<std::vector<ResourceSummary>> List(ListOptions options = {}) const;
  // One resource. kNotFound: never used, or reclaimed because idle.
  absl::StatusOr<ResourceInfo> Describe(const std::string& name) const;
  Call AsyncDescribe(const std::string& name, Callback<ResourceInfo> done) const;

 private:
  friend class Client;
  explicit Admin(std::shared_ptr<internal::Core> core) : core_(std::move(core)) {}

  std::shared_ptr<internal::Core> core_;
};

}  // namespace baton
