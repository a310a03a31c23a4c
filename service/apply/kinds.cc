// The one place that lists the kinds of resource and what each does at the
// moments every kind has (ShardState::KindHooks). Adding a kind: a value of
// Kind (command.h), its state in Resource (shard_state.h), its commands, and
// a row here; nothing else switches on the kind.
#include <array>

#include "service/apply/shard_state.h"

namespace baton::apply {

const ShardState::KindHooks& ShardState::HooksOf(Kind kind) {
  // Indexed by Kind, in its order.
  static const std::array<KindHooks, 8> kHooks = {{
      {"lock", &ShardState::DescribePool, &ShardState::PoolWaiterLeft,
       &ShardState::PoolSessionEnded},
      {"semaphore", &ShardState::DescribePool, &ShardState::PoolWaiterLeft,
       &ShardState::PoolSessionEnded},
      {"event", &ShardState::DescribeEvent, nullptr, nullptr},
      {"queue", &ShardState::DescribeQueue, &ShardState::QueueWaiterLeft,
       &ShardState::QueueSessionEnded},
      {"future", &ShardState::DescribeFuture, nullptr, nullptr},
      {"barrier", &ShardState::DescribeBarrier, &ShardState::BarrierWaiterLeft, nullptr},
      {"timer", &ShardState::DescribeTimer, nullptr, nullptr},
      {"work queue", &ShardState::DescribeTasks, nullptr, &ShardState::TasksSessionEnded},
  }};
  static_assert(static_cast<size_t>(Kind::kTasks) + 1 == std::tuple_size_v<decltype(kHooks)>,
                "every Kind has a row, in the order of the enum");
  return kHooks[static_cast<size_t>(kind)];
}

}  // namespace baton::apply
