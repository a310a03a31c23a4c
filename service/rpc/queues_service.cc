// Handlers of baton.v1.Queues. Put and Get roll back when their reply does
// not reach the client: a Get's items go back to the head of the queue, a
// Put's items still queued are taken back (queue.proto).
#include <deque>

#include "absl/strings/str_cat.h"
#include "baton/v1/queue.grpc.pb.h"
#include "baton/v1/stream.pb.h"
#include "service/rpc/convert.h"
#include "service/rpc/services.h"
#include "service/rpc/validate.h"

namespace baton::rpc {

// A Consume stream. Pushes arrive as results of the ConsumeQueue command, one
// per batch of items, and are written one at a time (one outstanding write,
// as gRPC requires). The server never has more than `prefetch` items out on
// the stream, so the inbox is bounded by it.
class ConsumeCall final : public ServerStreamCall<v1::ConsumeRequest, v1::ConsumeResponse> {
 public:
  using ServerStreamCall::ServerStreamCall;

  std::deque<apply::Result> inbox;
  runtime::Wakeup wake;

 protected:
  void Deliver(apply::Result result) override {
    inbox.push_back(std::move(result));
    wake.Notify();
  }
  void OnDone() override { wake.Notify(); }
};

namespace {

constexpr uint32_t kMaxBatch = 1000;

using PutCall = Op<v1::PutRequest, v1::PutResponse>;
using GetCall = Op<v1::GetRequest, v1::GetResponse>;
using AckCall = Op<v1::AckRequest, v1::AckResponse>;
using NackCall = Op<v1::NackRequest, v1::NackResponse>;
using JoinCall = Op<v1::JoinRequest, v1::JoinResponse>;
using PurgeCall = Op<v1::PurgeRequest, v1::PurgeResponse>;
using DeleteCall = Op<v1::DeleteQueueRequest, v1::DeleteQueueResponse>;

// The options a request declares or checks, or none when it leaves them out
// (an unset message, or one with every field at its default).
absl::StatusOr<std::optional<primitives::QueueOptions>> Options(const Env& env, bool has,
                                                                const v1::QueueOptions& o) {
  if (!has) return std::nullopt;
  primitives::QueueOptions out;
  switch (o.order()) {
    case v1::QUEUE_ORDER_UNSPECIFIED:
    case v1::QUEUE_ORDER_FIFO:
      out.order = primitives::QueueOrder::kFifo;
      break;
    case v1::QUEUE_ORDER_LIFO:
      out.order = primitives::QueueOrder::kLifo;
      break;
    case v1::QUEUE_ORDER_PRIORITY:
      out.order = primitives::QueueOrder::kPriority;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("unknown queue order ", o.order()));
  }
  if (o.maxsize() > env.limits.max_queue_items) {
    return absl::InvalidArgumentError(absl::StrCat("maxsize ", o.maxsize(), " is over the limit ",
                                                   env.limits.max_queue_items,
                                                   " (--max_queue_items); 0 means the limit"));
  }
  if (o.max_item_bytes() > env.limits.max_item_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("max_item_bytes ", o.max_item_bytes(),
                                                   " is over the limit ", env.limits.max_item_bytes,
                                                   " (--max_item_bytes); 0 means the limit"));
  }
  out.maxsize = o.maxsize() == 0 ? env.limits.max_queue_items : o.maxsize();
  out.max_item_bytes = o.max_item_bytes() == 0 ? env.limits.max_item_bytes : o.max_item_bytes();
  out.max_deliveries = o.max_deliveries();
  return out;
}

absl::Status CheckReceipts(const google::protobuf::RepeatedField<uint64_t>& receipts) {
  if (receipts.empty())
    return absl::InvalidArgumentError("receipts is empty: give the receipts from Get");
  if (receipts.size() > static_cast<int>(kMaxBatch)) {
    return absl::InvalidArgumentError(
        absl::StrCat(receipts.size(), " receipts; at most ", kMaxBatch, " per call"));
  }
  return absl::OkStatus();
}

runtime::Task<void> Put(Env& env, PutCall& call) {
  const auto& req = call.request;
  apply::PutItems c;
  absl::Status bad = ValidateName(req.name());
  if (bad.ok() && req.items().empty()) {
    bad = absl::InvalidArgumentError("items is empty: put at least one item");
  }
  if (bad.ok() && req.items_size() > static_cast<int>(kMaxBatch)) {
    bad = absl::InvalidArgumentError(
        absl::StrCat(req.items_size(), " items; at most ", kMaxBatch, " per Put"));
  }
  if (!bad.ok()) co_return co_await call.Fail(bad);
  auto options = Options(env, req.has_options(), req.options());
  if (!options.ok()) co_return co_await call.Fail(options.status());
  c.name = req.name();
  c.options = *options;
  for (int i = 0; i < req.items_size(); ++i) {
    const v1::QueueItem& in = req.items(i);
    if (!in.data().empty() && !in.text().empty()) {
      co_return co_await call.Fail(absl::InvalidArgumentError(
          absl::StrCat("item ", i, " has both data and text; give one")));
    }
    apply::NewQueueItem item;
    item.data = in.data().empty() ? in.text() : in.data();
    item.priority = in.priority();
    if (in.has_delay()) {
      auto d = ToMicros(in.delay(), "delay", env.limits.max_lease, /*allow_zero=*/true);
      if (!d.ok()) co_return co_await call.Fail(d.status());
      item.delay = *d;
    }
    c.items.push_back(std::move(item));
  }
  auto deadline = WaitDeadline(call.RpcDeadline(), req.has_timeout(), req.timeout(), call.Now());
  if (!deadline.ok()) co_return co_await call.Fail(deadline.status());
  c.deadline = *deadline;
  c.nowait = NoWait(req.has_timeout(), req.timeout());
  uint32_t target = env.cluster->ShardOfName(c.name);
  std::string name = c.name;
  auto& command = c;
  auto r = co_await call.Submit(target, command);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  auto& done = *r;
  v1::PutResponse resp;
  for (uint64_t id : done.item_ids) resp.add_item_ids(id);
  resp.set_size(done.size);
  resp.set_outcome(ToProto(done.how));
  // Kept unless lost: an uncertain Put may have been acknowledged to the
  // client (rolling it back would lose an item it was told is stored); the
  // client asks again with the request_id if it did not read the answer.
  if (co_await call.Reply(std::move(resp)) == Delivery::kLost) {
    apply::UndeliverPut undo{name, std::move(done.item_ids)};
    co_await call.Submit(target, undo);  // RollBack: answered once applied
  }
}

runtime::Task<void> Get(Env& env, GetCall& call) {
  const auto& req = call.request;
  apply::GetItems c;
  if (auto s = ValidateName(req.name()); !s.ok()) co_return co_await call.Fail(s);
  if (req.max_items() > kMaxBatch) {
    co_return co_await call.Fail(absl::InvalidArgumentError(
        absl::StrCat("max_items ", req.max_items(), " is over ", kMaxBatch)));
  }
  auto options = Options(env, req.has_options(), req.options());
  if (!options.ok()) co_return co_await call.Fail(options.status());
  c.name = req.name();
  c.options = *options;
  c.max_items = req.max_items() == 0 ? 1 : req.max_items();
  c.session = req.session_id();
  c.dead_letters = req.dead_letters();
  if (auto s = ValidateLength(req.request_id(), kMaxRequestIdBytes, "request_id"); !s.ok()) {
    co_return co_await call.Fail(s);
  }
  c.request_id = req.request_id();
  if (req.ack_size() > static_cast<int>(kMaxBatch)) {
    co_return co_await call.Fail(absl::InvalidArgumentError(
        absl::StrCat(req.ack_size(), " receipts in ack; at most ", kMaxBatch, " per call")));
  }
  c.ack.assign(req.ack().begin(), req.ack().end());
  if (req.has_ttl()) {
    auto ttl = ToMicros(req.ttl(), "ttl", env.limits.max_lease, /*allow_zero=*/false);
    if (!ttl.ok()) co_return co_await call.Fail(ttl.status());
    c.lease = *ttl;
  }
  if (c.session == 0 && c.lease == 0) {
    co_return co_await call.Fail(absl::InvalidArgumentError(
        "no owner for the items got: give session_id (from Sessions/Open) or ttl (a "
        "visibility timeout, e.g. \"60s\"), or both"));
  }
  auto deadline = WaitDeadline(call.RpcDeadline(), req.has_timeout(), req.timeout(), call.Now());
  if (!deadline.ok()) co_return co_await call.Fail(deadline.status());
  c.deadline = *deadline;
  c.nowait = NoWait(req.has_timeout(), req.timeout());
  uint32_t target = env.cluster->ShardOfName(c.name);
  std::string name = c.name;
  auto& command = c;
  auto r = co_await call.Submit(target, command);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  auto& got = *r;
  v1::GetResponse resp;
  std::vector<uint64_t> receipts;
  for (auto& item : got.items) {
    receipts.push_back(item.receipt);
    v1::Delivery* d = resp.add_items();
    d->set_receipt(item.receipt);
    d->set_item_id(item.item_id);
    d->set_priority(item.priority);
    d->set_delivery_count(item.deliveries);
    ToProto(item.age, d->mutable_age());
    // `text` mirrors the payload when it is text, for grpcurl and scripts.
    if (IsValidUtf8(item.data)) d->set_text(item.data);
    d->set_data(std::move(item.data));
  }
  resp.set_outcome(ToProto(got.how));
  resp.set_acked(got.acked);
  resp.mutable_ack_failed()->Add(got.ack_failed.begin(), got.ack_failed.end());
  // Kept unless lost: the client recovers an uncertain Get by request_id.
  if (co_await call.Reply(std::move(resp)) == Delivery::kLost) {
    apply::UndeliverItems undo{name, std::move(receipts)};
    co_await call.Submit(target, undo);  // RollBack: answered once applied
  }
}

runtime::Task<void> Ack(Env& env, AckCall& call) {
  const auto& req = call.request;
  absl::Status bad = ValidateName(req.name());
  if (bad.ok()) bad = CheckReceipts(req.receipts());
  if (!bad.ok()) co_return co_await call.Fail(bad);
  apply::AckItems cmd{req.name(), {req.receipts().begin(), req.receipts().end()}};
  auto r = co_await call.Submit(env.cluster->ShardOfName(req.name()), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::AckResponse resp;
  resp.set_acked(r->acked);
  resp.set_unfinished(r->unfinished);
  co_await call.Reply(std::move(resp));
}

runtime::Task<void> Nack(Env& env, NackCall& call) {
  const auto& req = call.request;
  absl::Status bad = ValidateName(req.name());
  if (bad.ok()) bad = CheckReceipts(req.receipts());
  if (!bad.ok()) co_return co_await call.Fail(bad);
  Duration delay = 0;
  if (req.has_delay()) {
    auto d = ToMicros(req.delay(), "delay", env.limits.max_lease, /*allow_zero=*/true);
    if (!d.ok()) co_return co_await call.Fail(d.status());
    delay = *d;
  }
  apply::NackItems cmd{req.name(), {req.receipts().begin(), req.receipts().end()}, delay};
  auto r = co_await call.Submit(env.cluster->ShardOfName(req.name()), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::NackResponse resp;
  resp.set_returned(r->returned);
  resp.set_dead_lettered(r->dead_lettered);
  co_await call.Reply(std::move(resp));
}

runtime::Task<void> Join(Env& env, JoinCall& call) {
  const auto& req = call.request;
  if (auto s = ValidateName(req.name()); !s.ok()) co_return co_await call.Fail(s);
  auto deadline = WaitDeadline(call.RpcDeadline(), req.has_timeout(), req.timeout(), call.Now());
  if (!deadline.ok()) co_return co_await call.Fail(deadline.status());
  apply::JoinQueue cmd{req.name(), *deadline};
  auto r = co_await call.Submit(env.cluster->ShardOfName(req.name()), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::JoinResponse resp;
  resp.set_outcome(ToProto(r->how));
  co_await call.Reply(std::move(resp));
}

runtime::Task<void> Purge(Env& env, PurgeCall& call) {
  const auto& req = call.request;
  if (auto s = ValidateName(req.name()); !s.ok()) co_return co_await call.Fail(s);
  apply::PurgeQueue cmd{req.name(), req.dead_letters()};
  auto r = co_await call.Submit(env.cluster->ShardOfName(req.name()), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::PurgeResponse resp;
  resp.set_purged(r->purged);
  co_await call.Reply(std::move(resp));
}

runtime::Task<void> Delete(Env& env, DeleteCall& call) {
  const auto& req = call.request;
  if (auto s = ValidateName(req.name()); !s.ok()) co_return co_await call.Fail(s);
  apply::DeleteQueue cmd{req.name()};
  auto r = co_await call.Submit(env.cluster->ShardOfName(req.name()), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::DeleteQueueResponse resp;
  resp.set_deleted(r->deleted);
  co_await call.Reply(std::move(resp));
}

void FillDelivery(apply::DeliveredItem item, v1::Delivery* d) {
  d->set_receipt(item.receipt);
  d->set_item_id(item.item_id);
  d->set_priority(item.priority);
  d->set_delivery_count(item.deliveries);
  ToProto(item.age, d->mutable_age());
  if (IsValidUtf8(item.data)) d->set_text(item.data);
  d->set_data(std::move(item.data));
}

// Receipts of the items in a push result (to roll them back).
std::vector<uint64_t> Receipts(const apply::GotItems& got) {
  std::vector<uint64_t> out;
  for (const auto& item : got.items) out.push_back(item.receipt);
  return out;
}

runtime::Task<void> Consume(Env& env, ConsumeCall& call) {
  const auto& req = call.request;
  apply::ConsumeQueue c;
  absl::Status end = ValidateName(req.name());
  if (end.ok() && req.prefetch() > kMaxBatch) {
    end = absl::InvalidArgumentError(
        absl::StrCat("prefetch ", req.prefetch(), " is over ", kMaxBatch));
  }
  if (end.ok() && req.has_ttl()) {
    auto ttl = ToMicros(req.ttl(), "ttl", env.limits.max_lease, /*allow_zero=*/false);
    if (ttl.ok()) c.lease = *ttl;
    end = ttl.status();
  }
  if (end.ok() && req.session_id() == 0 && c.lease == 0) {
    end = absl::InvalidArgumentError(
        "no owner for the items sent: give session_id or ttl (a visibility timeout), or both");
  }
  if (end.ok()) {
    auto options = Options(env, req.has_options(), req.options());
    if (options.ok()) c.options = *options;
    end = options.status();
  }
  std::string name = req.name();
  uint32_t target = end.ok() ? env.cluster->ShardOfName(name) : 0;
  bool consuming = end.ok();
  if (consuming) {
    c.name = name;
    c.session = req.session_id();
    c.prefetch = req.prefetch() == 0 ? 16 : req.prefetch();
    // No need to register for shutdown: BeginShutdown ends every consumer.
    call.shard().Send(target, call.Signed(std::move(c)), call.op());
  }
  while (end.ok()) {
    while (call.inbox.empty() && !call.done()) co_await call.wake;
    if (call.done()) break;
    auto r = apply::TakeResult<apply::ConsumeQueue>(std::move(call.inbox.front()));
    call.inbox.pop_front();
    if (!r.ok()) {
      end = r.status();
      consuming = false;  // the server ended it
      break;
    }
    std::vector<uint64_t> receipts = Receipts(*r);
    v1::ConsumeResponse msg;
    for (auto& item : r->items) {
      FillDelivery(std::move(item), msg.add_items());
    }
    // Batch what is already waiting into the same write.
    while (!call.inbox.empty() && call.inbox.front().ok() && msg.items_size() < 256) {
      auto more = apply::TakeResult<apply::ConsumeQueue>(std::move(call.inbox.front()));
      call.inbox.pop_front();
      if (!more.ok()) break;  // only OK results are taken here
      for (uint64_t receipt : Receipts(*more)) receipts.push_back(receipt);
      for (auto& item : more->items) {
        FillDelivery(std::move(item), msg.add_items());
      }
    }
    bool ok = co_await runtime::CqOp([&](void* tag) { call.writer.Write(msg, tag); });
    if (!ok) {
      // The stream broke: these items never reached the consumer.
      call.Send(target, apply::UndeliverItems{name, std::move(receipts)});
      break;
    }
  }
  if (consuming) {
    // Stop the pushes, then give back every item pushed but never written:
    // those in the inbox and those still on their way, which arrive before
    // the queue's answer to StopConsuming (replies to one op keep their
    // order). Nothing is left in flight that the consumer never saw.
    call.shard().Send(target, apply::StopConsuming{name}, call.op());
    std::vector<uint64_t> unsent;
    for (;;) {
      while (call.inbox.empty()) co_await call.wake;
      apply::Result r = std::move(call.inbox.front());
      call.inbox.pop_front();
      // Pushes (GotItems) until the answer to StopConsuming (Done).
      if (r.ok() && std::holds_alternative<apply::Done>(r.value)) break;
      if (auto* got = std::get_if<apply::GotItems>(&r.value); r.ok() && got != nullptr) {
        for (uint64_t receipt : Receipts(*got)) unsent.push_back(receipt);
      }
    }
    if (!unsent.empty()) call.Send(target, apply::UndeliverItems{name, std::move(unsent)});
  }
  grpc::Status status = ToGrpc(end);
  co_await runtime::CqOp([&](void* tag) { call.writer.Finish(status, tag); });
}

}  // namespace

void ListenQueues(Env& env, apply::Shard& shard, Services& svc, Listeners& out) {
  auto* q = &svc.queues;
  Listen(env, shard, out, "Put", q, &Put, v1::Operation::kPut);
  Listen(env, shard, out, "Get", q, &Get, v1::Operation::kGet);
  Listen(env, shard, out, "Ack", q, &Ack, v1::Operation::kAck);
  Listen(env, shard, out, "Nack", q, &Nack, v1::Operation::kNack);
  Listen(env, shard, out, "Join", q, &Join, v1::Operation::kJoin);
  Listen(env, shard, out, "Purge", q, &Purge, v1::Operation::kPurge);
  Listen(env, shard, out, "Delete", q, &Delete, v1::Operation::kDeleteQueue);
  ListenStream<ConsumeCall>(env, shard, out, "Consume", q, &Consume);
}

}  // namespace baton::rpc
