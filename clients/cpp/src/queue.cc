#include "baton/queue.h"

#include "acquire.h"
#include "baton/consumer.h"
#include "core.h"
#include "grant.h"
#include "proto_time.h"
#include "queue_get.h"
#include "read_stream.h"
#include "unary_op.h"

namespace baton {

using internal::CallOptions;
using internal::Core;

namespace {

v1::QueueOptions ToProto(const QueueConfig& config) {
  v1::QueueOptions out;
  switch (config.order) {
    case QueueOrder::kFifo:
      out.set_order(v1::QUEUE_ORDER_FIFO);
      break;
    case QueueOrder::kLifo:
      out.set_order(v1::QUEUE_ORDER_LIFO);
      break;
    case QueueOrder::kPriority:
      out.set_order(v1::QUEUE_ORDER_PRIORITY);
      break;
  }
  out.set_maxsize(config.maxsize);
  out.set_max_item_bytes(config.max_item_bytes);
  out.set_max_deliveries(config.max_deliveries);
  return out;
}

Delivery FromProto(const v1::Delivery& d) {
  return Delivery{.receipt = d.receipt(),
                  .item_id = d.item_id(),
                  .data = d.data(),
                  .priority = d.priority(),
                  .delivery_count = d.delivery_count(),
                  .age = internal::FromProto(d.age())};
}

std::vector<Delivery> FromProto(const google::protobuf::RepeatedPtrField<v1::Delivery>& items) {
  std::vector<Delivery> out;
  out.reserve(items.size());
  for (const v1::Delivery& d : items) out.push_back(FromProto(d));
  return out;
}

}  // namespace

namespace internal {

std::vector<Delivery> Deliveries(const v1::GetResponse& response) {
  return baton::FromProto(response.items());
}

void NackAsync(std::shared_ptr<Core> core, const std::string& name, std::vector<uint64_t> receipts,
               std::function<void()> then) {
  if (receipts.empty()) {
    then();
    return;
  }
  v1::NackRequest request;
  request.set_name(name);
  for (uint64_t r : receipts) request.add_receipts(r);
  StartDetached<v1::NackResponse>(
      std::move(core), std::move(request),
      [](Core& core, auto... args) { core.queues().async()->Nack(args...); }, BATON_ROUTE(nack),
      [then = std::move(then)](absl::Status) { then(); });
}

Call StartGet(std::shared_ptr<Core> core, const std::string& name,
              const std::optional<QueueConfig>& config, GetOptions options,
              std::vector<uint64_t> ack, Callback<v1::GetResponse> done) {
  absl::StatusOr<uint64_t> session = SessionIf(*core, options.use_session);
  if (!session.ok()) return FailNow(session.status(), done);
  v1::GetRequest request;
  request.set_name(name);
  request.set_max_items(options.max_items);
  request.set_session_id(*session);
  if (options.lease.has_value()) *request.mutable_ttl() = ToProto(*options.lease);
  if (config.has_value()) *request.mutable_options() = baton::ToProto(*config);
  request.set_dead_letters(options.dead_letters);
  request.set_request_id(options.request_id.empty() ? core->NewRequestId() : options.request_id);
  for (uint64_t r : ack) request.add_ack(r);
  CallOptions call;
  call.cancel = options.cancel;
  call.wait_until = DeadlineIn(options.timeout);
  Grant<v1::GetResponse, v1::GetResponse> grant{
      .accept = [](const v1::GetResponse& r) -> absl::StatusOr<v1::GetResponse> { return r; },
      .give_back =
          [core, name](const v1::GetResponse& r, std::function<void()> then) {
            std::vector<uint64_t> receipts;
            for (const v1::Delivery& d : r.items()) receipts.push_back(d.receipt());
            NackAsync(core, name, std::move(receipts), std::move(then));
          },
  };
  return StartAcquire<v1::GetResponse, v1::GetResponse>(
      std::move(core), std::move(call), std::move(request),
      [](Core& core, auto... args) { core.queues().async()->Get(args...); }, BATON_ROUTE(get),
      std::move(grant), std::move(done));
}

}  // namespace internal

absl::StatusOr<PutResult> Queue::Put(std::vector<Item> items, PutOptions options) const {
  return internal::Block<PutResult>([&](Callback<PutResult> done) {
    return AsyncPut(std::move(items), std::move(options), std::move(done));
  });
}

absl::StatusOr<PutResult> Queue::Put(std::string data) const {
  std::vector<Item> items;
  items.push_back(Item{.data = std::move(data)});
  return Put(std::move(items));
}

Call Queue::AsyncPut(std::vector<Item> items, PutOptions options, Callback<PutResult> done) const {
  v1::PutRequest request;
  request.set_name(name_);
  if (config_.has_value()) *request.mutable_options() = ToProto(*config_);
  for (Item& item : items) {
    v1::QueueItem* out = request.add_items();
    out->set_data(std::move(item.data));
    out->set_priority(item.priority);
    if (item.delay > absl::ZeroDuration()) *out->mutable_delay() = internal::ToProto(item.delay);
  }
  CallOptions call;
  call.cancel = options.cancel;
  call.wait_until = internal::DeadlineIn(options.timeout);
  return internal::StartUnary<PutResult, v1::PutResponse>(
      core_, std::move(call), std::move(request),
      [](Core& core, auto... args) { core.queues().async()->Put(args...); }, BATON_ROUTE(put),
      internal::Converting<PutResult, v1::PutResponse>([](const v1::PutResponse& r) {
        return PutResult{.item_ids = {r.item_ids().begin(), r.item_ids().end()}, .size = r.size()};
      }),
      std::move(done));
}

absl::StatusOr<PutResult> Queue::PutMany(std::vector<Item> items, PutOptions options) const {
  return Put(std::move(items), std::move(options));
}

absl::StatusOr<std::vector<Delivery>> Queue::Get(GetOptions options) const {
  return internal::Block<std::vector<Delivery>>([&](Callback<std::vector<Delivery>> done) {
    return AsyncGet(std::move(options), std::move(done));
  });
}

absl::StatusOr<Delivery> Queue::GetOne(absl::Duration timeout) const {
  absl::StatusOr<std::vector<Delivery>> got = Get(GetOptions{.max_items = 1, .timeout = timeout});
  if (!got.ok()) return got.status();
  if (got->empty()) return absl::InternalError("the server answered Get with no item");
  return std::move(got->front());
}

Call Queue::AsyncGet(GetOptions options, Callback<std::vector<Delivery>> done) const {
  return internal::StartGet(core_, name_, config_, std::move(options), {},
                            [done = std::move(done)](absl::StatusOr<v1::GetResponse> got) {
                              if (!got.ok()) {
                                done(got.status());
                                return;
                              }
                              done(FromProto(got->items()));
                            });
}

absl::StatusOr<AckResult> Queue::Ack(std::vector<uint64_t> receipts) const {
  return internal::Block<AckResult>(
      [&](Callback<AckResult> done) { return AsyncAck(std::move(receipts), std::move(done)); });
}

absl::StatusOr<AckResult> Queue::Ack(std::initializer_list<uint64_t> receipts) const {
  return Ack(std::vector<uint64_t>(receipts));
}

absl::StatusOr<AckResult> Queue::Ack(const Delivery& delivery) const {
  return Ack(std::vector<uint64_t>{delivery.receipt});
}

Call Queue::AsyncAck(std::vector<uint64_t> receipts, Callback<AckResult> done) const {
  v1::AckRequest request;
  request.set_name(name_);
  for (uint64_t r : receipts) request.add_receipts(r);
  return internal::StartUnary<AckResult, v1::AckResponse>(
      core_, CallOptions{}, std::move(request),
      [](Core& core, auto... args) { core.queues().async()->Ack(args...); }, BATON_ROUTE(ack),
      internal::Converting<AckResult, v1::AckResponse>([](const v1::AckResponse& r) {
        return AckResult{.acked = r.acked(), .unfinished = r.unfinished()};
      }),
      std::move(done));
}

absl::StatusOr<NackResult> Queue::Nack(std::vector<uint64_t> receipts, absl::Duration delay) const {
  return internal::Block<NackResult>([&](Callback<NackResult> done) {
    return AsyncNack(std::move(receipts), delay, std::move(done));
  });
}

absl::StatusOr<NackResult> Queue::Nack(std::initializer_list<uint64_t> receipts,
                                       absl::Duration delay) const {
  return Nack(std::vector<uint64_t>(receipts), delay);
}

absl::StatusOr<NackResult> Queue::Nack(const Delivery& delivery) const {
  return Nack(std::vector<uint64_t>{delivery.receipt});
}

Call Queue::AsyncNack(std::vector<uint64_t> receipts, absl::Duration delay,
                      Callback<NackResult> done) const {
  v1::NackRequest request;
  request.set_name(name_);
  for (uint64_t r : receipts) request.add_receipts(r);
  if (delay > absl::ZeroDuration()) *request.mutable_delay() = internal::ToProto(delay);
  return internal::StartUnary<NackResult, v1::NackResponse>(
      core_, CallOptions{}, std::move(request),
      [](Core& core, auto... args) { core.queues().async()->Nack(args...); }, BATON_ROUTE(nack),
      internal::Converting<NackResult, v1::NackResponse>([](const v1::NackResponse& r) {
        return NackResult{.returned = r.returned(), .dead_lettered = r.dead_lettered()};
      }),
      std::move(done));
}

absl::StatusOr<GrantOutcome> Queue::Join(WaitOptions options) const {
  return internal::Block<GrantOutcome>(
      [&](Callback<GrantOutcome> done) { return AsyncJoin(std::move(options), std::move(done)); });
}

Call Queue::AsyncJoin(WaitOptions options, Callback<GrantOutcome> done) const {
  v1::JoinRequest request;
  request.set_name(name_);
  CallOptions call;
  call.cancel = options.cancel;
  call.wait_until = internal::DeadlineIn(options.timeout);
  return internal::StartUnary<GrantOutcome, v1::JoinResponse>(
      core_, std::move(call), std::move(request),
      [](Core& core, auto... args) { core.queues().async()->Join(args...); }, BATON_ROUTE(join),
      internal::Converting<GrantOutcome, v1::JoinResponse>(
          [](const v1::JoinResponse& r) { return internal::FromProto(r.outcome()); }),
      std::move(done));
}

absl::StatusOr<uint32_t> Queue::Purge(bool dead_letters) const {
  v1::PurgeRequest request;
  request.set_name(name_);
  request.set_dead_letters(dead_letters);
  return internal::Block<uint32_t>([&](Callback<uint32_t> done) {
    return internal::StartUnary<uint32_t, v1::PurgeResponse>(
        core_, CallOptions{}, std::move(request),
        [](Core& core, auto... args) { core.queues().async()->Purge(args...); }, BATON_ROUTE(purge),
        internal::Converting<uint32_t, v1::PurgeResponse>(
            [](const v1::PurgeResponse& r) { return r.purged(); }),
        std::move(done));
  });
}

absl::StatusOr<bool> Queue::Delete() const {
  v1::DeleteQueueRequest request;
  request.set_name(name_);
  return internal::Block<bool>([&](Callback<bool> done) {
    return internal::StartUnary<bool, v1::DeleteQueueResponse>(
        core_, CallOptions{}, std::move(request),
        [](Core& core, auto... args) { core.queues().async()->Delete(args...); },
        BATON_ROUTE(delete_queue),
        internal::Converting<bool, v1::DeleteQueueResponse>(
            [](const v1::DeleteQueueResponse& r) { return r.deleted(); }),
        std::move(done));
  });
}

Stream Queue::Consume(ConsumeOptions options, std::function<void(Delivery)> on_delivery,
                      std::function<void(absl::Status)> on_end) const {
  absl::StatusOr<uint64_t> session = internal::SessionIf(*core_, options.use_session);
  if (!session.ok()) {
    if (on_end) on_end(session.status());
    return Stream();
  }
  v1::ConsumeRequest request;
  request.set_name(name_);
  request.set_session_id(*session);
  if (options.lease.has_value()) *request.mutable_ttl() = internal::ToProto(*options.lease);
  request.set_prefetch(options.prefetch);
  if (config_.has_value()) *request.mutable_options() = ToProto(*config_);
  return internal::ReadStream<v1::ConsumeRequest, v1::ConsumeResponse>::Start(
      core_, std::move(request),
      [](Core& core, auto... args) { core.queues().async()->Consume(args...); },
      [on_delivery = std::move(on_delivery)](v1::ConsumeResponse& response) {
        for (const v1::Delivery& d : response.items()) {
          if (on_delivery) on_delivery(FromProto(d));
        }
      },
      std::move(on_end), options.cancel);
}

}  // namespace baton
