// The one place that lists the kinds of resource and what each does at the
// moments every kind has (ShardState::KindHooks). Adding a kind: a value of
// Kind (command.h), its state in Resource (shard_state.h), its commands, and
// a row here; nothing else switches on the kind.
#include <array>

#include "service/apply/shard_state.h"

namespace baton::apply {

const ShardState::KindHooks& ShardState::HooksOf(Kind kind) {
  // Indexed by Kind, in its order.
  // Columns: name, describe, waiter_left, session_ended, end_all,
  // orphanable, roll_back, holders.
  using S = ShardState;
  static const std::array<KindHooks, 8> kHooks = {{
      {"lock", &S::DescribePool, &S::PoolWaiterLeft, &S::PoolSessionEnded, nullptr,
       &S::PoolOrphanable, &S::PoolRollBack, &S::PoolHolders},
      {"semaphore", &S::DescribePool, &S::PoolWaiterLeft, &S::PoolSessionEnded, nullptr,
       &S::PoolOrphanable, &S::PoolRollBack, &S::PoolHolders},
      {"event", &S::DescribeEvent, nullptr, nullptr, &S::EventEndAll, nullptr, nullptr, nullptr},
      {"queue", &S::DescribeQueue, &S::QueueWaiterLeft, &S::QueueSessionEnded, &S::QueueEndAll,
       &S::QueueOrphanable, &S::QueueRollBack, &S::QueueHolders},
      {"future", &S::DescribeFuture, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr},
      {"barrier", &S::DescribeBarrier, &S::BarrierWaiterLeft, nullptr, nullptr, nullptr, nullptr,
       nullptr},
      {"timer", &S::DescribeTimer, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr},
      {"work queue", &S::DescribeTasks, nullptr, &S::TasksSessionEnded, &S::TasksEndAll,
       &S::TasksOrphanable, &S::TasksRollBack, &S::TasksHolders},
  }};
  static_assert(static_cast<size_t>(Kind::kTasks) + 1 == std::tuple_size_v<decltype(kHooks)>,
                "every Kind has a row, in the order of the enum");
  return kHooks[static_cast<size_t>(kind)];
}

}  // namespace baton::apply
