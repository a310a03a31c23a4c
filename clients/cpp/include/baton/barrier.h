// Barrier: a named asyncio.Barrier shared between processes
// (baton.v1.Barriers): releases its waiters together once `parties` of them
// have arrived, then starts a new cycle.
//
//   auto arrival = client.Barrier("shards/checkpoint", 5).Wait();
//
// As in asyncio, a waiter that times out or is cancelled breaks the barrier:
// the others (and every later Wait) get kAborted until Reset.
//
// Thread safety: a cheap, copyable handle; any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "baton/call.h"
#include "baton/wait_options.h"

namespace baton {

namespace internal {
class Core;
}  // namespace internal

struct BarrierArrival {
  // 0 for the first to arrive, parties-1 for the one that tripped it.
  uint32_t index = 0;
  // The barrier's trips so far, from 1.
  uint64_t cycle = 0;
};

class Barrier {
 public:
  const std::string& name() const { return name_; }
  uint32_t parties() const { return parties_; }

  // Arrives and waits for the other parties. Errors: kAborted (broken before
  // or while waiting; session ended), kDeadlineExceeded and kCancelled (the
  // barrier is now broken), kInvalidArgument (no parties on first use),
  // kFailedPrecondition (parties differ), kUnavailable.
  absl::StatusOr<BarrierArrival> Wait(WaitOptions options = {}) const;
  // The asynchronous form. Cancellation breaks the barrier, as in asyncio; a
  // reply that raced with the cancel is delivered as it is.
  Call AsyncWait(WaitOptions options, Callback<BarrierArrival> done) const;

  // Breaks the barrier; returns the waiters ended with kAborted. Idempotent.
  absl::StatusOr<uint32_t> Abort() const;
  // Empties the barrier and un-breaks it, ending current waiters (kAborted).
  absl::StatusOr<uint32_t> Reset() const;

 private:
  friend class Client;
  Barrier(std::shared_ptr<internal::Core> core, std::string name, uint32_t parties)
      : core_(std::move(core)), name_(std::move(name)), parties_(parties) {}

  std::shared_ptr<internal::Core> core_;
  std::string name_;
  uint32_t parties_ = 0;
};

}  // namespace baton
