// Queue Get with acknowledgements riding on it, for Queue::AsyncGet and the
// stream consumer (consumer.cc). Thread safety: as unary_op.h.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "baton/queue.h"
#include "baton/v1/queue.pb.h"
#include "core.h"

namespace baton::internal {

// Starts a Get (with a request_id, recovery of items that cross a cancel)
// that first acknowledges `ack` (receipts of the same queue). `done` gets
// the whole answer: items, outcome, acked, ack_failed.
Call StartGet(std::shared_ptr<Core> core, const std::string& name,
              const std::optional<QueueConfig>& config, GetOptions options,
              std::vector<uint64_t> ack, Callback<v1::GetResponse> done);
std::vector<Delivery> Deliveries(const v1::GetResponse& response);
// Returns items (Nack) without blocking; `then` runs once answered.
void NackAsync(std::shared_ptr<Core> core, const std::string& name, std::vector<uint64_t> receipts,
               std::function<void()> then);

}  // namespace baton::internal
