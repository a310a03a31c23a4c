// Limits: the bounds that keep every table finite (DESIGN.md §3 "Bounded").
// Hitting one answers RESOURCE_EXHAUSTED. Values are per shard: the server
// divides its configured totals by the number of shards, except for
// sessions and waits, whose totals the cluster checks when a command enters
// (Cluster::Admit) and which each shard also enforces as they are.
#pragma once

#include <cstdint>

#include "runtime/clock.h"

namespace baton::apply {

struct Limits {
  int64_t max_resources = 1'000'000;  // live names on this shard
  int64_t max_sessions = 100'000;     // sessions homed on this shard
  int64_t max_waiters = 1'000'000;    // pending waits on this shard
  int64_t max_waiters_per_resource = 100'000;
  int64_t max_capacity = 1'000'000'000;  // semaphore permits
  Duration max_session_ttl = 3600 * kSecond;
  Duration min_session_ttl = kSecond;
  Duration max_lease = 24 * 3600 * kSecond;
  uint32_t max_queue_items = 1'000'000;        // a queue's maxsize, and its default
  uint32_t max_item_bytes = 1 << 20;           // a queue item's size, and its default
  uint64_t max_queue_bytes = 256ull << 20;     // payload bytes held by all queues on this shard
  Duration future_retention = 3600 * kSecond;  // default time a done future is kept
  Duration max_retention = 7 * 24 * 3600 * kSecond;
  int64_t max_tasks_per_queue = 100'000;  // tasks a work queue holds, done ones included
};

}  // namespace baton::apply
