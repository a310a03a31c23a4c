// The one place that lists the kinds of resource and what each does at the
// moments every kind has (ShardState::KindHooks). Adding a kind: a value of
// Kind (command.h), its state in Resource (shard_state.h), its commands, and
// a row here; nothing else switches on the kind (the state codec reads a
// resource into the kind's blank state; the timers a kind arms have their
// own TimerKind).
#include <array>

#include "service/apply/shard_state.h"

namespace baton::apply {

const ShardState::KindHooks& ShardState::HooksOf(Kind kind) {
  // Indexed by Kind, in its order. A hook left out: the kind has nothing to
  // do then.
  using S = ShardState;
  // Locks and semaphores are both permit pools; a semaphore's capacity is a
  // declaration.
  auto pool = [](const char* name, bool (*declared)(const Resource&)) {
    return KindHooks{.name = name,
                     .blank = &S::PoolBlank,
                     .declared = declared,
                     .waiter_leaving = &S::PoolWaiterLeaving,
                     .describe = &S::DescribePool,
                     .waiter_left = &S::PoolWaiterLeft,
                     .session_ended = &S::PoolSessionEnded,
                     .orphanable = &S::PoolOrphanable,
                     .roll_back = &S::PoolRollBack,
                     .holders = &S::PoolHolders};
  };
  static const std::array<KindHooks, 8> kHooks = {{
      pool("lock", nullptr),
      pool("semaphore", &S::SemaphoreDeclared),
      {.name = "event",
       .blank = &S::EventBlank,
       .describe = &S::DescribeEvent,
       .end_all = &S::EventEndAll},
      {.name = "queue",
       .blank = &S::QueueBlank,
       .line = &S::QueueLine,
       .declared = &S::QueueDeclared,
       .settle = &S::QueueSettle,
       .describe = &S::DescribeQueue,
       .waiter_left = &S::QueueWaiterLeft,
       .session_ended = &S::QueueSessionEnded,
       .end_all = &S::QueueEndAll,
       .orphanable = &S::QueueOrphanable,
       .roll_back = &S::QueueRollBack,
       .holders = &S::QueueHolders},
      {.name = "future", .blank = &S::FutureBlank, .describe = &S::DescribeFuture},
      {.name = "barrier",
       .blank = &S::BarrierBlank,
       .describe = &S::DescribeBarrier,
       .waiter_left = &S::BarrierWaiterLeft},
      {.name = "timer", .blank = &S::TimerBlank, .describe = &S::DescribeTimer},
      {.name = "work queue",
       .blank = &S::TasksBlank,
       .line = &S::TasksLine,
       .waiter_leaving = &S::TasksWaiterLeaving,
       .describe = &S::DescribeTasks,
       .session_ended = &S::TasksSessionEnded,
       .end_all = &S::TasksEndAll,
       .orphanable = &S::TasksOrphanable,
       .roll_back = &S::TasksRollBack,
       .holders = &S::TasksHolders},
  }};
  static_assert(static_cast<size_t>(Kind::kTasks) + 1 == std::tuple_size_v<decltype(kHooks)>,
                "every Kind has a row, in the order of the enum");
  return kHooks[static_cast<size_t>(kind)];
}

}  // namespace baton::apply
