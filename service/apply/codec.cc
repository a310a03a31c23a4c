// Encode and Decode (codec.h): one ToProto/FromProto pair per struct, in
// command.h's order. Each pair follows a BATON_CODEC_FIELDS line stating how
// many members the struct has; a struct that gains a member stops compiling
// here until its pair maps it. Fields are mapped by name, never by position,
// so reordering command.h changes nothing stored.
//
// Decode never falls back to a struct's default: every member is assigned
// from its proto field (an absent field is its proto zero), so a replayed
// command is the logged one, not the logged one merged with today's
// defaults.
//
// Errors are built only on the failure path: a decoder reports the field
// relative to its own message ("kind: ..."), and each enclosing level
// prefixes its field name (Within), giving the full proto path.
#include "service/apply/codec.h"

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/unknown_field_set.h"

namespace baton::apply {
namespace {

namespace pb = ::baton::internal::v1;
using primitives::FutureState;
using primitives::FutureValue;
using primitives::QueueOptions;
using primitives::QueueOrder;

#define BATON_CODEC_FIELDS(Type, n)                                                    \
  static_assert(codec_internal::FieldCount<Type>() == (n), #Type                       \
                " changed: map every member in codec.cc and command.proto, set it in " \
                "codec_test.cc's full sample, then update this count")

static_assert(std::variant_size_v<CommandVariant> == 52,
              "a command was added or removed: give it a message and a field of Command in "
              "command.proto, a ToProto/FromProto pair here, and samples in codec_test.cc");

// --- errors --------------------------------------------------------------------

// `field: what`. `field` is relative to the message being decoded; may be
// empty when the message itself is at fault.
absl::Status Bad(absl::string_view field, absl::string_view what) {
  return absl::DataLossError(absl::StrCat(field, ": ", what));
}

// Prefixes the path of a nested error with the field that holds it.
absl::Status Within(absl::string_view field, const absl::Status& inner) {
  absl::string_view message = inner.message();
  bool at_message = !message.empty() && message.front() == ':';
  return absl::Status(inner.code(), absl::StrCat(field, at_message ? "" : ".", message));
}

// A message with fields this build does not know was written by a newer
// build: applying it without them would not be the logged command.
absl::Status CheckKnown(const google::protobuf::Message& m) {
  const google::protobuf::UnknownFieldSet& unknown = m.GetReflection()->GetUnknownFields(m);
  if (unknown.empty()) return absl::OkStatus();
  return Bad("", absl::StrCat("unknown field number ", unknown.field(0).number(),
                              " (written by a newer build?)"));
}

absl::Status BadEnum(absl::string_view field, const google::protobuf::EnumDescriptor* type,
                     int value) {
  if (const auto* known = type->FindValueByNumber(value); known != nullptr) {
    return Bad(field, absl::StrCat(known->name(), " is not a valid value here"));
  }
  return Bad(field, absl::StrCat("unknown ", type->name(), " value ", value));
}

// --- enums ---------------------------------------------------------------------

pb::Kind ToProto(Kind k) {
  switch (k) {
    case Kind::kLock:
      return pb::KIND_LOCK;
    case Kind::kSemaphore:
      return pb::KIND_SEMAPHORE;
    case Kind::kEvent:
      return pb::KIND_EVENT;
    case Kind::kQueue:
      return pb::KIND_QUEUE;
    case Kind::kFuture:
      return pb::KIND_FUTURE;
    case Kind::kBarrier:
      return pb::KIND_BARRIER;
    case Kind::kTimer:
      return pb::KIND_TIMER;
    case Kind::kTasks:
      return pb::KIND_TASKS;
  }
  return pb::KIND_UNSPECIFIED;  // not a Kind; Decode rejects it
}

absl::Status FromProto(int v, absl::string_view field, Kind* out) {
  switch (v) {
    case pb::KIND_LOCK:
      *out = Kind::kLock;
      return absl::OkStatus();
    case pb::KIND_SEMAPHORE:
      *out = Kind::kSemaphore;
      return absl::OkStatus();
    case pb::KIND_EVENT:
      *out = Kind::kEvent;
      return absl::OkStatus();
    case pb::KIND_QUEUE:
      *out = Kind::kQueue;
      return absl::OkStatus();
    case pb::KIND_FUTURE:
      *out = Kind::kFuture;
      return absl::OkStatus();
    case pb::KIND_BARRIER:
      *out = Kind::kBarrier;
      return absl::OkStatus();
    case pb::KIND_TIMER:
      *out = Kind::kTimer;
      return absl::OkStatus();
    case pb::KIND_TASKS:
      *out = Kind::kTasks;
      return absl::OkStatus();
  }
  return BadEnum(field, pb::Kind_descriptor(), v);
}

pb::QueueOrder ToProto(QueueOrder o) {
  switch (o) {
    case QueueOrder::kFifo:
      return pb::QUEUE_ORDER_FIFO;
    case QueueOrder::kLifo:
      return pb::QUEUE_ORDER_LIFO;
    case QueueOrder::kPriority:
      return pb::QUEUE_ORDER_PRIORITY;
  }
  return pb::QUEUE_ORDER_UNSPECIFIED;
}

absl::Status FromProto(int v, absl::string_view field, QueueOrder* out) {
  switch (v) {
    case pb::QUEUE_ORDER_FIFO:
      *out = QueueOrder::kFifo;
      return absl::OkStatus();
    case pb::QUEUE_ORDER_LIFO:
      *out = QueueOrder::kLifo;
      return absl::OkStatus();
    case pb::QUEUE_ORDER_PRIORITY:
      *out = QueueOrder::kPriority;
      return absl::OkStatus();
  }
  return BadEnum(field, pb::QueueOrder_descriptor(), v);
}

pb::FutureState ToProto(FutureState s) {
  switch (s) {
    case FutureState::kPending:
      return pb::FUTURE_STATE_PENDING;
    case FutureState::kResult:
      return pb::FUTURE_STATE_RESULT;
    case FutureState::kException:
      return pb::FUTURE_STATE_EXCEPTION;
    case FutureState::kCancelled:
      return pb::FUTURE_STATE_CANCELLED;
  }
  return pb::FUTURE_STATE_UNSPECIFIED;
}

absl::Status FromProto(int v, absl::string_view field, FutureState* out) {
  switch (v) {
    case pb::FUTURE_STATE_PENDING:
      *out = FutureState::kPending;
      return absl::OkStatus();
    case pb::FUTURE_STATE_RESULT:
      *out = FutureState::kResult;
      return absl::OkStatus();
    case pb::FUTURE_STATE_EXCEPTION:
      *out = FutureState::kException;
      return absl::OkStatus();
    case pb::FUTURE_STATE_CANCELLED:
      *out = FutureState::kCancelled;
      return absl::OkStatus();
  }
  return BadEnum(field, pb::FutureState_descriptor(), v);
}

// --- nested structs ------------------------------------------------------------

// Decodes the sub-message `m` of field `field` into `out`.
template <class M, class T>
absl::Status FromField(const M& m, absl::string_view field, T* out);

BATON_CODEC_FIELDS(QueueOptions, 4);
void ToProto(const QueueOptions& o, pb::QueueOptions* m) {
  m->set_order(ToProto(o.order));
  m->set_maxsize(o.maxsize);
  m->set_max_item_bytes(o.max_item_bytes);
  m->set_max_deliveries(o.max_deliveries);
}
absl::Status FromProto(const pb::QueueOptions& m, QueueOptions* o) {
  o->maxsize = m.maxsize();
  o->max_item_bytes = m.max_item_bytes();
  o->max_deliveries = m.max_deliveries();
  return FromProto(m.order(), "order", &o->order);
}

// `present`: the message has the field; absent is std::nullopt.
absl::Status FromProto(bool present, const pb::QueueOptions& m, std::optional<QueueOptions>* o) {
  o->reset();
  if (!present) return absl::OkStatus();
  QueueOptions options;
  if (auto s = FromField(m, "options", &options); !s.ok()) return s;
  *o = options;
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(FutureValue, 4);
void ToProto(const FutureValue& v, pb::FutureValue* m) {
  m->set_state(ToProto(v.state));
  m->set_value(v.value);
  m->set_error_code(v.error_code);
  m->set_error_message(v.error_message);
}
absl::Status FromProto(const pb::FutureValue& m, FutureValue* v) {
  v->value = m.value();
  v->error_code = m.error_code();
  v->error_message = m.error_message();
  return FromProto(m.state(), "state", &v->state);
}

BATON_CODEC_FIELDS(NewQueueItem, 3);
void ToProto(const NewQueueItem& i, pb::NewQueueItem* m) {
  m->set_data(i.data);
  m->set_priority(i.priority);
  m->set_delay_us(i.delay);
}
absl::Status FromProto(const pb::NewQueueItem& m, NewQueueItem* i) {
  i->data = m.data();
  i->priority = m.priority();
  i->delay = m.delay_us();
  return absl::OkStatus();
}

template <class M, class T>
absl::Status FromField(const M& m, absl::string_view field, T* out) {
  absl::Status s = CheckKnown(m);
  if (s.ok()) s = FromProto(m, out);
  return s.ok() ? s : Within(field, s);
}

absl::StatusOr<Command> DecodeCommand(const pb::Command& in);

// --- locks and semaphores ------------------------------------------------------

BATON_CODEC_FIELDS(AcquirePermits, 9);
void ToProto(const AcquirePermits& c, pb::Command* out) {
  pb::AcquirePermits* m = out->mutable_acquire_permits();
  m->set_kind(ToProto(c.kind));
  m->set_name(c.name);
  m->set_capacity(c.capacity);
  m->set_count(c.count);
  m->set_session(c.session);
  m->set_lease_us(c.lease);
  m->set_deadline_us(c.deadline);
  m->set_request_id(c.request_id);
  m->set_nowait(c.nowait);
}
absl::Status FromProto(const pb::AcquirePermits& m, AcquirePermits* c) {
  c->name = m.name();
  c->capacity = m.capacity();
  c->count = m.count();
  c->session = m.session();
  c->lease = m.lease_us();
  c->deadline = m.deadline_us();
  c->request_id = m.request_id();
  c->nowait = m.nowait();
  return FromProto(m.kind(), "kind", &c->kind);
}

BATON_CODEC_FIELDS(ReleasePermits, 5);
void ToProto(const ReleasePermits& c, pb::Command* out) {
  pb::ReleasePermits* m = out->mutable_release_permits();
  m->set_kind(ToProto(c.kind));
  m->set_name(c.name);
  m->set_token(c.token);
  m->set_session(c.session);
  m->set_count(c.count);
}
absl::Status FromProto(const pb::ReleasePermits& m, ReleasePermits* c) {
  c->name = m.name();
  c->token = m.token();
  c->session = m.session();
  c->count = m.count();
  return FromProto(m.kind(), "kind", &c->kind);
}

BATON_CODEC_FIELDS(RefreshPermits, 5);
void ToProto(const RefreshPermits& c, pb::Command* out) {
  pb::RefreshPermits* m = out->mutable_refresh_permits();
  m->set_kind(ToProto(c.kind));
  m->set_name(c.name);
  m->set_token(c.token);
  m->set_session(c.session);
  m->set_lease_us(c.lease);
}
absl::Status FromProto(const pb::RefreshPermits& m, RefreshPermits* c) {
  c->name = m.name();
  c->token = m.token();
  c->session = m.session();
  c->lease = m.lease_us();
  return FromProto(m.kind(), "kind", &c->kind);
}

BATON_CODEC_FIELDS(Undeliver, 4);
void ToProto(const Undeliver& c, pb::Command* out) {
  pb::Undeliver* m = out->mutable_undeliver();
  m->set_kind(ToProto(c.kind));
  m->set_name(c.name);
  m->set_token(c.token);
  m->set_delivery(c.delivery);
}
absl::Status FromProto(const pb::Undeliver& m, Undeliver* c) {
  c->name = m.name();
  c->token = m.token();
  c->delivery = m.delivery();
  return FromProto(m.kind(), "kind", &c->kind);
}

// --- events --------------------------------------------------------------------

BATON_CODEC_FIELDS(SetEvent, 1);
void ToProto(const SetEvent& c, pb::Command* out) { out->mutable_set_event()->set_name(c.name); }
absl::Status FromProto(const pb::SetEvent& m, SetEvent* c) {
  c->name = m.name();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(ClearEvent, 1);
void ToProto(const ClearEvent& c, pb::Command* out) {
  out->mutable_clear_event()->set_name(c.name);
}
absl::Status FromProto(const pb::ClearEvent& m, ClearEvent* c) {
  c->name = m.name();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(WaitEvent, 3);
void ToProto(const WaitEvent& c, pb::Command* out) {
  pb::WaitEvent* m = out->mutable_wait_event();
  m->set_name(c.name);
  m->set_session(c.session);
  m->set_deadline_us(c.deadline);
}
absl::Status FromProto(const pb::WaitEvent& m, WaitEvent* c) {
  c->name = m.name();
  c->session = m.session();
  c->deadline = m.deadline_us();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(WatchEvent, 1);
void ToProto(const WatchEvent& c, pb::Command* out) {
  out->mutable_watch_event()->set_name(c.name);
}
absl::Status FromProto(const pb::WatchEvent& m, WatchEvent* c) {
  c->name = m.name();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(UnwatchEvent, 1);
void ToProto(const UnwatchEvent& c, pb::Command* out) {
  out->mutable_unwatch_event()->set_name(c.name);
}
absl::Status FromProto(const pb::UnwatchEvent& m, UnwatchEvent* c) {
  c->name = m.name();
  return absl::OkStatus();
}

// --- queues --------------------------------------------------------------------

BATON_CODEC_FIELDS(PutItems, 5);
void ToProto(const PutItems& c, pb::Command* out) {
  pb::PutItems* m = out->mutable_put_items();
  m->set_name(c.name);
  if (c.options.has_value()) ToProto(*c.options, m->mutable_options());
  m->mutable_items()->Reserve(static_cast<int>(c.items.size()));
  for (const NewQueueItem& item : c.items) ToProto(item, m->add_items());
  m->set_deadline_us(c.deadline);
  m->set_nowait(c.nowait);
}
absl::Status FromProto(const pb::PutItems& m, PutItems* c) {
  c->name = m.name();
  if (auto s = FromProto(m.has_options(), m.options(), &c->options); !s.ok()) return s;
  c->items.clear();
  c->items.reserve(m.items_size());
  for (int i = 0; i < m.items_size(); ++i) {
    NewQueueItem& item = c->items.emplace_back();
    if (auto s = FromField(m.items(i), absl::StrCat("items[", i, "]"), &item); !s.ok()) return s;
  }
  c->deadline = m.deadline_us();
  c->nowait = m.nowait();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(GetItems, 10);
void ToProto(const GetItems& c, pb::Command* out) {
  pb::GetItems* m = out->mutable_get_items();
  m->set_name(c.name);
  if (c.options.has_value()) ToProto(*c.options, m->mutable_options());
  m->set_max_items(c.max_items);
  m->set_session(c.session);
  m->set_lease_us(c.lease);
  m->set_deadline_us(c.deadline);
  m->set_dead_letters(c.dead_letters);
  m->set_request_id(c.request_id);
  m->mutable_ack()->Add(c.ack.begin(), c.ack.end());
  m->set_nowait(c.nowait);
}
absl::Status FromProto(const pb::GetItems& m, GetItems* c) {
  c->name = m.name();
  c->max_items = m.max_items();
  c->session = m.session();
  c->lease = m.lease_us();
  c->deadline = m.deadline_us();
  c->dead_letters = m.dead_letters();
  c->request_id = m.request_id();
  c->ack.assign(m.ack().begin(), m.ack().end());
  c->nowait = m.nowait();
  return FromProto(m.has_options(), m.options(), &c->options);
}

BATON_CODEC_FIELDS(AckItems, 2);
void ToProto(const AckItems& c, pb::Command* out) {
  pb::AckItems* m = out->mutable_ack_items();
  m->set_name(c.name);
  m->mutable_receipts()->Add(c.receipts.begin(), c.receipts.end());
}
absl::Status FromProto(const pb::AckItems& m, AckItems* c) {
  c->name = m.name();
  c->receipts.assign(m.receipts().begin(), m.receipts().end());
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(NackItems, 3);
void ToProto(const NackItems& c, pb::Command* out) {
  pb::NackItems* m = out->mutable_nack_items();
  m->set_name(c.name);
  m->mutable_receipts()->Add(c.receipts.begin(), c.receipts.end());
  m->set_delay_us(c.delay);
}
absl::Status FromProto(const pb::NackItems& m, NackItems* c) {
  c->name = m.name();
  c->receipts.assign(m.receipts().begin(), m.receipts().end());
  c->delay = m.delay_us();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(JoinQueue, 2);
void ToProto(const JoinQueue& c, pb::Command* out) {
  pb::JoinQueue* m = out->mutable_join_queue();
  m->set_name(c.name);
  m->set_deadline_us(c.deadline);
}
absl::Status FromProto(const pb::JoinQueue& m, JoinQueue* c) {
  c->name = m.name();
  c->deadline = m.deadline_us();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(PurgeQueue, 2);
void ToProto(const PurgeQueue& c, pb::Command* out) {
  pb::PurgeQueue* m = out->mutable_purge_queue();
  m->set_name(c.name);
  m->set_dead_letters(c.dead_letters);
}
absl::Status FromProto(const pb::PurgeQueue& m, PurgeQueue* c) {
  c->name = m.name();
  c->dead_letters = m.dead_letters();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(DeleteQueue, 1);
void ToProto(const DeleteQueue& c, pb::Command* out) {
  out->mutable_delete_queue()->set_name(c.name);
}
absl::Status FromProto(const pb::DeleteQueue& m, DeleteQueue* c) {
  c->name = m.name();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(DeleteSemaphore, 1);
void ToProto(const DeleteSemaphore& c, pb::Command* out) {
  out->mutable_delete_semaphore()->set_name(c.name);
}
absl::Status FromProto(const pb::DeleteSemaphore& m, DeleteSemaphore* c) {
  c->name = m.name();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(ConsumeQueue, 5);
void ToProto(const ConsumeQueue& c, pb::Command* out) {
  pb::ConsumeQueue* m = out->mutable_consume_queue();
  m->set_name(c.name);
  if (c.options.has_value()) ToProto(*c.options, m->mutable_options());
  m->set_session(c.session);
  m->set_lease_us(c.lease);
  m->set_prefetch(c.prefetch);
}
absl::Status FromProto(const pb::ConsumeQueue& m, ConsumeQueue* c) {
  c->name = m.name();
  c->session = m.session();
  c->lease = m.lease_us();
  c->prefetch = m.prefetch();
  return FromProto(m.has_options(), m.options(), &c->options);
}

BATON_CODEC_FIELDS(StopConsuming, 1);
void ToProto(const StopConsuming& c, pb::Command* out) {
  out->mutable_stop_consuming()->set_name(c.name);
}
absl::Status FromProto(const pb::StopConsuming& m, StopConsuming* c) {
  c->name = m.name();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(UndeliverItems, 2);
void ToProto(const UndeliverItems& c, pb::Command* out) {
  pb::UndeliverItems* m = out->mutable_undeliver_items();
  m->set_name(c.name);
  m->mutable_receipts()->Add(c.receipts.begin(), c.receipts.end());
}
absl::Status FromProto(const pb::UndeliverItems& m, UndeliverItems* c) {
  c->name = m.name();
  c->receipts.assign(m.receipts().begin(), m.receipts().end());
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(UndeliverPut, 2);
void ToProto(const UndeliverPut& c, pb::Command* out) {
  pb::UndeliverPut* m = out->mutable_undeliver_put();
  m->set_name(c.name);
  m->mutable_item_ids()->Add(c.item_ids.begin(), c.item_ids.end());
}
absl::Status FromProto(const pb::UndeliverPut& m, UndeliverPut* c) {
  c->name = m.name();
  c->item_ids.assign(m.item_ids().begin(), m.item_ids().end());
  return absl::OkStatus();
}

// --- futures -------------------------------------------------------------------

BATON_CODEC_FIELDS(CompleteFuture, 3);
void ToProto(const CompleteFuture& c, pb::Command* out) {
  pb::CompleteFuture* m = out->mutable_complete_future();
  m->set_name(c.name);
  ToProto(c.value, m->mutable_value());
  m->set_retention_us(c.retention);
}
absl::Status FromProto(const pb::CompleteFuture& m, CompleteFuture* c) {
  c->name = m.name();
  c->retention = m.retention_us();
  // Always written by Encode; an absent value has state UNSPECIFIED and fails.
  return FromField(m.value(), "value", &c->value);
}

BATON_CODEC_FIELDS(AwaitFuture, 3);
void ToProto(const AwaitFuture& c, pb::Command* out) {
  pb::AwaitFuture* m = out->mutable_await_future();
  m->set_name(c.name);
  m->set_session(c.session);
  m->set_deadline_us(c.deadline);
}
absl::Status FromProto(const pb::AwaitFuture& m, AwaitFuture* c) {
  c->name = m.name();
  c->session = m.session();
  c->deadline = m.deadline_us();
  return absl::OkStatus();
}

// --- barriers ------------------------------------------------------------------

BATON_CODEC_FIELDS(BarrierWait, 4);
void ToProto(const BarrierWait& c, pb::Command* out) {
  pb::BarrierWait* m = out->mutable_barrier_wait();
  m->set_name(c.name);
  m->set_parties(c.parties);
  m->set_session(c.session);
  m->set_deadline_us(c.deadline);
}
absl::Status FromProto(const pb::BarrierWait& m, BarrierWait* c) {
  c->name = m.name();
  c->parties = m.parties();
  c->session = m.session();
  c->deadline = m.deadline_us();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(AbortBarrier, 1);
void ToProto(const AbortBarrier& c, pb::Command* out) {
  out->mutable_abort_barrier()->set_name(c.name);
}
absl::Status FromProto(const pb::AbortBarrier& m, AbortBarrier* c) {
  c->name = m.name();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(ResetBarrier, 1);
void ToProto(const ResetBarrier& c, pb::Command* out) {
  out->mutable_reset_barrier()->set_name(c.name);
}
absl::Status FromProto(const pb::ResetBarrier& m, ResetBarrier* c) {
  c->name = m.name();
  return absl::OkStatus();
}

// --- conditions ----------------------------------------------------------------

BATON_CODEC_FIELDS(ConditionWait, 7);
void ToProto(const ConditionWait& c, pb::Command* out) {
  pb::ConditionWait* m = out->mutable_condition_wait();
  m->set_lock(c.lock);
  m->set_condition(c.condition);
  m->set_token(c.token);
  m->set_session(c.session);
  m->set_lease_us(c.lease);
  m->set_deadline_us(c.deadline);
  m->set_rpc_deadline_us(c.rpc_deadline);
}
absl::Status FromProto(const pb::ConditionWait& m, ConditionWait* c) {
  c->lock = m.lock();
  c->condition = m.condition();
  c->token = m.token();
  c->session = m.session();
  c->lease = m.lease_us();
  c->deadline = m.deadline_us();
  c->rpc_deadline = m.rpc_deadline_us();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(Notify, 6);
void ToProto(const Notify& c, pb::Command* out) {
  pb::Notify* m = out->mutable_notify();
  m->set_lock(c.lock);
  m->set_condition(c.condition);
  m->set_token(c.token);
  m->set_session(c.session);
  m->set_n(c.n);
  m->set_all(c.all);
}
absl::Status FromProto(const pb::Notify& m, Notify* c) {
  c->lock = m.lock();
  c->condition = m.condition();
  c->token = m.token();
  c->session = m.session();
  c->n = m.n();
  c->all = m.all();
  return absl::OkStatus();
}

// --- tasks ---------------------------------------------------------------------

BATON_CODEC_FIELDS(SubmitTask, 7);
void ToProto(const SubmitTask& c, pb::Command* out) {
  pb::SubmitTask* m = out->mutable_submit_task();
  m->set_queue(c.queue);
  m->set_payload(c.payload);
  m->set_delay_us(c.delay);
  m->set_max_attempts(c.max_attempts);
  m->set_group(c.group);
  m->set_shielded(c.shielded);
  m->set_run_timeout_us(c.run_timeout);
}
absl::Status FromProto(const pb::SubmitTask& m, SubmitTask* c) {
  c->queue = m.queue();
  c->payload = m.payload();
  c->delay = m.delay_us();
  c->max_attempts = m.max_attempts();
  c->group = m.group();
  c->shielded = m.shielded();
  c->run_timeout = m.run_timeout_us();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(TakeTask, 6);
void ToProto(const TakeTask& c, pb::Command* out) {
  pb::TakeTask* m = out->mutable_take_task();
  m->set_queue(c.queue);
  m->set_session(c.session);
  m->set_lease_us(c.lease);
  m->set_deadline_us(c.deadline);
  m->set_request_id(c.request_id);
  m->set_nowait(c.nowait);
}
absl::Status FromProto(const pb::TakeTask& m, TakeTask* c) {
  c->queue = m.queue();
  c->session = m.session();
  c->lease = m.lease_us();
  c->deadline = m.deadline_us();
  c->request_id = m.request_id();
  c->nowait = m.nowait();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(UndeliverTask, 3);
void ToProto(const UndeliverTask& c, pb::Command* out) {
  pb::UndeliverTask* m = out->mutable_undeliver_task();
  m->set_queue(c.queue);
  m->set_seq(c.seq);
  m->set_attempt(c.attempt);
}
absl::Status FromProto(const pb::UndeliverTask& m, UndeliverTask* c) {
  c->queue = m.queue();
  c->seq = m.seq();
  c->attempt = m.attempt();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(HeartbeatTask, 3);
void ToProto(const HeartbeatTask& c, pb::Command* out) {
  pb::HeartbeatTask* m = out->mutable_heartbeat_task();
  m->set_queue(c.queue);
  m->set_seq(c.seq);
  m->set_attempt(c.attempt);
}
absl::Status FromProto(const pb::HeartbeatTask& m, HeartbeatTask* c) {
  c->queue = m.queue();
  c->seq = m.seq();
  c->attempt = m.attempt();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(CompleteTask, 9);
void ToProto(const CompleteTask& c, pb::Command* out) {
  pb::CompleteTask* m = out->mutable_complete_task();
  m->set_queue(c.queue);
  m->set_seq(c.seq);
  m->set_attempt(c.attempt);
  m->set_failed(c.failed);
  m->set_result(c.result);
  m->set_error_code(c.error_code);
  m->set_error_message(c.error_message);
  m->set_final(c.final);
  m->set_give_back(c.give_back);
}
absl::Status FromProto(const pb::CompleteTask& m, CompleteTask* c) {
  c->queue = m.queue();
  c->seq = m.seq();
  c->attempt = m.attempt();
  c->failed = m.failed();
  c->result = m.result();
  c->error_code = m.error_code();
  c->error_message = m.error_message();
  c->final = m.final();
  c->give_back = m.give_back();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(AwaitTask, 3);
void ToProto(const AwaitTask& c, pb::Command* out) {
  pb::AwaitTask* m = out->mutable_await_task();
  m->set_queue(c.queue);
  m->set_seq(c.seq);
  m->set_deadline_us(c.deadline);
}
absl::Status FromProto(const pb::AwaitTask& m, AwaitTask* c) {
  c->queue = m.queue();
  c->seq = m.seq();
  c->deadline = m.deadline_us();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(CancelTask, 2);
void ToProto(const CancelTask& c, pb::Command* out) {
  pb::CancelTask* m = out->mutable_cancel_task();
  m->set_queue(c.queue);
  m->set_seq(c.seq);
}
absl::Status FromProto(const pb::CancelTask& m, CancelTask* c) {
  c->queue = m.queue();
  c->seq = m.seq();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(WaitTasks, 5);
void ToProto(const WaitTasks& c, pb::Command* out) {
  pb::WaitTasks* m = out->mutable_wait_tasks();
  m->set_queue(c.queue);
  m->mutable_seqs()->Add(c.seqs.begin(), c.seqs.end());
  m->set_group(c.group);
  m->set_mode(c.mode);
  m->set_deadline_us(c.deadline);
}
absl::Status FromProto(const pb::WaitTasks& m, WaitTasks* c) {
  c->queue = m.queue();
  c->seqs.assign(m.seqs().begin(), m.seqs().end());
  c->group = m.group();
  if (m.mode() > std::numeric_limits<decltype(c->mode)>::max()) {
    return Bad("mode", absl::StrCat(m.mode(), " is out of range (0..255)"));
  }
  c->mode = static_cast<decltype(c->mode)>(m.mode());
  c->deadline = m.deadline_us();
  return absl::OkStatus();
}

// --- timers --------------------------------------------------------------------

BATON_CODEC_FIELDS(ScheduleTimer, 6);
void ToProto(const ScheduleTimer& c, pb::Command* out) {
  pb::ScheduleTimer* m = out->mutable_schedule_timer();
  m->set_name(c.name);
  m->set_due_us(c.due);
  m->set_every_us(c.every);
  m->set_replace(c.replace);
  m->set_target(c.target);
  if (c.action != nullptr) Encode(*c.action, m->mutable_action());
}
absl::Status FromProto(const pb::ScheduleTimer& m, ScheduleTimer* c) {
  c->name = m.name();
  c->due = m.due_us();
  c->every = m.every_us();
  c->replace = m.replace();
  c->target = m.target();
  if (!m.has_action()) return Bad("action", "missing: a timer needs the command it fires");
  absl::StatusOr<Command> action = DecodeCommand(m.action());
  if (!action.ok()) return Within("action", action.status());
  c->action = std::make_shared<const Command>(*std::move(action));
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(CancelTimer, 1);
void ToProto(const CancelTimer& c, pb::Command* out) {
  out->mutable_cancel_timer()->set_name(c.name);
}
absl::Status FromProto(const pb::CancelTimer& m, CancelTimer* c) {
  c->name = m.name();
  return absl::OkStatus();
}

// --- waits in general ----------------------------------------------------------

BATON_CODEC_FIELDS(CancelWait, 0);
void ToProto(const CancelWait&, pb::Command* out) { out->mutable_cancel_wait(); }
absl::Status FromProto(const pb::CancelWait&, CancelWait*) { return absl::OkStatus(); }

// --- sessions ------------------------------------------------------------------

BATON_CODEC_FIELDS(OpenSession, 5);
void ToProto(const OpenSession& c, pb::Command* out) {
  pb::OpenSession* m = out->mutable_open_session();
  m->set_ttl_us(c.ttl);
  m->set_label(c.label);
  m->set_owner(c.owner);
  m->set_nonce(c.nonce);
  m->set_max_sessions(c.max_sessions);
}
absl::Status FromProto(const pb::OpenSession& m, OpenSession* c) {
  c->ttl = m.ttl_us();
  c->label = m.label();
  c->owner = m.owner();
  c->nonce = m.nonce();
  c->max_sessions = m.max_sessions();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(KeepAlive, 1);
void ToProto(const KeepAlive& c, pb::Command* out) {
  out->mutable_keep_alive()->set_session(c.session);
}
absl::Status FromProto(const pb::KeepAlive& m, KeepAlive* c) {
  c->session = m.session();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(AttachStream, 1);
void ToProto(const AttachStream& c, pb::Command* out) {
  out->mutable_attach_stream()->set_session(c.session);
}
absl::Status FromProto(const pb::AttachStream& m, AttachStream* c) {
  c->session = m.session();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(DetachStream, 1);
void ToProto(const DetachStream& c, pb::Command* out) {
  out->mutable_detach_stream()->set_session(c.session);
}
absl::Status FromProto(const pb::DetachStream& m, DetachStream* c) {
  c->session = m.session();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(CloseSession, 1);
void ToProto(const CloseSession& c, pb::Command* out) {
  out->mutable_close_session()->set_session(c.session);
}
absl::Status FromProto(const pb::CloseSession& m, CloseSession* c) {
  c->session = m.session();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(DescribeSession, 1);
void ToProto(const DescribeSession& c, pb::Command* out) {
  out->mutable_describe_session()->set_session(c.session);
}
absl::Status FromProto(const pb::DescribeSession& m, DescribeSession* c) {
  c->session = m.session();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(SessionStarted, 2);
void ToProto(const SessionStarted& c, pb::Command* out) {
  pb::SessionStarted* m = out->mutable_session_started();
  m->set_session(c.session);
  m->set_owner(c.owner);
}
absl::Status FromProto(const pb::SessionStarted& m, SessionStarted* c) {
  c->session = m.session();
  c->owner = m.owner();
  return absl::OkStatus();
}

BATON_CODEC_FIELDS(SessionEnded, 1);
void ToProto(const SessionEnded& c, pb::Command* out) {
  out->mutable_session_ended()->set_session(c.session);
}
absl::Status FromProto(const pb::SessionEnded& m, SessionEnded* c) {
  c->session = m.session();
  return absl::OkStatus();
}

// --- inspection ----------------------------------------------------------------

BATON_CODEC_FIELDS(ListResources, 4);
void ToProto(const ListResources& c, pb::Command* out) {
  pb::ListResources* m = out->mutable_list_resources();
  m->set_kind(c.kind.has_value() ? ToProto(*c.kind) : pb::KIND_UNSPECIFIED);
  m->set_prefix(c.prefix);
  m->set_after(c.after);
  m->set_limit(c.limit);
}
absl::Status FromProto(const pb::ListResources& m, ListResources* c) {
  c->prefix = m.prefix();
  c->after = m.after();
  c->limit = m.limit();
  c->kind.reset();
  if (m.kind() == pb::KIND_UNSPECIFIED) return absl::OkStatus();  // every kind
  return FromProto(m.kind(), "kind", &c->kind.emplace());
}

BATON_CODEC_FIELDS(DescribeResource, 1);
void ToProto(const DescribeResource& c, pb::Command* out) {
  out->mutable_describe_resource()->set_name(c.name);
}
absl::Status FromProto(const pb::DescribeResource& m, DescribeResource* c) {
  c->name = m.name();
  return absl::OkStatus();
}

// --- lifecycle -----------------------------------------------------------------

BATON_CODEC_FIELDS(BeginShutdown, 0);
void ToProto(const BeginShutdown&, pb::Command* out) { out->mutable_begin_shutdown(); }
absl::Status FromProto(const pb::BeginShutdown&, BeginShutdown*) { return absl::OkStatus(); }

BATON_CODEC_FIELDS(Tick, 0);
void ToProto(const Tick&, pb::Command* out) { out->mutable_tick(); }
absl::Status FromProto(const pb::Tick&, Tick*) { return absl::OkStatus(); }

BATON_CODEC_FIELDS(Recover, 1);
void ToProto(const Recover& c, pb::Command* out) {
  out->mutable_recover()->set_orphan_grace_us(c.orphan_grace);
}
absl::Status FromProto(const pb::Recover& m, Recover* c) {
  c->orphan_grace = m.orphan_grace_us();
  return absl::OkStatus();
}

#undef BATON_CODEC_FIELDS

// --- the oneof -----------------------------------------------------------------

template <class T, class M>
absl::StatusOr<Command> DecodeAs(const M& m) {
  T c;
  absl::Status s = CheckKnown(m);
  if (s.ok()) s = FromProto(m, &c);
  if (!s.ok()) return s;
  return Command(std::move(c));
}

absl::StatusOr<Command> DecodeCase(const pb::Command& in) {
  // No default: a field added to the oneof without a case here is a
  // compile error (-Wswitch).
  switch (in.command_case()) {
    case pb::Command::kAcquirePermits:
      return DecodeAs<AcquirePermits>(in.acquire_permits());
    case pb::Command::kReleasePermits:
      return DecodeAs<ReleasePermits>(in.release_permits());
    case pb::Command::kRefreshPermits:
      return DecodeAs<RefreshPermits>(in.refresh_permits());
    case pb::Command::kUndeliver:
      return DecodeAs<Undeliver>(in.undeliver());
    case pb::Command::kSetEvent:
      return DecodeAs<SetEvent>(in.set_event());
    case pb::Command::kClearEvent:
      return DecodeAs<ClearEvent>(in.clear_event());
    case pb::Command::kWaitEvent:
      return DecodeAs<WaitEvent>(in.wait_event());
    case pb::Command::kWatchEvent:
      return DecodeAs<WatchEvent>(in.watch_event());
    case pb::Command::kUnwatchEvent:
      return DecodeAs<UnwatchEvent>(in.unwatch_event());
    case pb::Command::kPutItems:
      return DecodeAs<PutItems>(in.put_items());
    case pb::Command::kGetItems:
      return DecodeAs<GetItems>(in.get_items());
    case pb::Command::kAckItems:
      return DecodeAs<AckItems>(in.ack_items());
    case pb::Command::kNackItems:
      return DecodeAs<NackItems>(in.nack_items());
    case pb::Command::kJoinQueue:
      return DecodeAs<JoinQueue>(in.join_queue());
    case pb::Command::kPurgeQueue:
      return DecodeAs<PurgeQueue>(in.purge_queue());
    case pb::Command::kDeleteQueue:
      return DecodeAs<DeleteQueue>(in.delete_queue());
    case pb::Command::kDeleteSemaphore:
      return DecodeAs<DeleteSemaphore>(in.delete_semaphore());
    case pb::Command::kConsumeQueue:
      return DecodeAs<ConsumeQueue>(in.consume_queue());
    case pb::Command::kStopConsuming:
      return DecodeAs<StopConsuming>(in.stop_consuming());
    case pb::Command::kUndeliverItems:
      return DecodeAs<UndeliverItems>(in.undeliver_items());
    case pb::Command::kUndeliverPut:
      return DecodeAs<UndeliverPut>(in.undeliver_put());
    case pb::Command::kCompleteFuture:
      return DecodeAs<CompleteFuture>(in.complete_future());
    case pb::Command::kAwaitFuture:
      return DecodeAs<AwaitFuture>(in.await_future());
    case pb::Command::kBarrierWait:
      return DecodeAs<BarrierWait>(in.barrier_wait());
    case pb::Command::kAbortBarrier:
      return DecodeAs<AbortBarrier>(in.abort_barrier());
    case pb::Command::kResetBarrier:
      return DecodeAs<ResetBarrier>(in.reset_barrier());
    case pb::Command::kConditionWait:
      return DecodeAs<ConditionWait>(in.condition_wait());
    case pb::Command::kNotify:
      return DecodeAs<Notify>(in.notify());
    case pb::Command::kSubmitTask:
      return DecodeAs<SubmitTask>(in.submit_task());
    case pb::Command::kTakeTask:
      return DecodeAs<TakeTask>(in.take_task());
    case pb::Command::kUndeliverTask:
      return DecodeAs<UndeliverTask>(in.undeliver_task());
    case pb::Command::kHeartbeatTask:
      return DecodeAs<HeartbeatTask>(in.heartbeat_task());
    case pb::Command::kCompleteTask:
      return DecodeAs<CompleteTask>(in.complete_task());
    case pb::Command::kAwaitTask:
      return DecodeAs<AwaitTask>(in.await_task());
    case pb::Command::kCancelTask:
      return DecodeAs<CancelTask>(in.cancel_task());
    case pb::Command::kWaitTasks:
      return DecodeAs<WaitTasks>(in.wait_tasks());
    case pb::Command::kScheduleTimer:
      return DecodeAs<ScheduleTimer>(in.schedule_timer());
    case pb::Command::kCancelTimer:
      return DecodeAs<CancelTimer>(in.cancel_timer());
    case pb::Command::kCancelWait:
      return DecodeAs<CancelWait>(in.cancel_wait());
    case pb::Command::kOpenSession:
      return DecodeAs<OpenSession>(in.open_session());
    case pb::Command::kKeepAlive:
      return DecodeAs<KeepAlive>(in.keep_alive());
    case pb::Command::kAttachStream:
      return DecodeAs<AttachStream>(in.attach_stream());
    case pb::Command::kDetachStream:
      return DecodeAs<DetachStream>(in.detach_stream());
    case pb::Command::kCloseSession:
      return DecodeAs<CloseSession>(in.close_session());
    case pb::Command::kDescribeSession:
      return DecodeAs<DescribeSession>(in.describe_session());
    case pb::Command::kSessionStarted:
      return DecodeAs<SessionStarted>(in.session_started());
    case pb::Command::kSessionEnded:
      return DecodeAs<SessionEnded>(in.session_ended());
    case pb::Command::kListResources:
      return DecodeAs<ListResources>(in.list_resources());
    case pb::Command::kDescribeResource:
      return DecodeAs<DescribeResource>(in.describe_resource());
    case pb::Command::kBeginShutdown:
      return DecodeAs<BeginShutdown>(in.begin_shutdown());
    case pb::Command::kTick:
      return DecodeAs<Tick>(in.tick());
    case pb::Command::kRecover:
      return DecodeAs<Recover>(in.recover());
    case pb::Command::COMMAND_NOT_SET:
      break;
  }
  return Bad("", "no command set");
}

// Decodes `in`, an error naming the path below `in`.
absl::StatusOr<Command> DecodeCommand(const pb::Command& in) {
  // An unknown field here is most likely a command added by a newer build.
  if (absl::Status s = CheckKnown(in); !s.ok()) return s;
  absl::StatusOr<Command> c = DecodeCase(in);
  if (c.ok()) {
    c->principal = in.principal();
    c->admin = in.admin();
    c->names_limit = in.names_limit();
    return c;
  }
  if (in.command_case() == pb::Command::COMMAND_NOT_SET) return c;
  const google::protobuf::FieldDescriptor* field =
      in.GetDescriptor()->FindFieldByNumber(in.command_case());
  return Within(field->name(), c.status());
}

}  // namespace

void Encode(const Command& command, internal::v1::Command* out) {
  out->Clear();
  std::visit([out](const auto& c) { ToProto(c, out); },
             static_cast<const CommandVariant&>(command));
  out->set_principal(command.principal);
  out->set_admin(command.admin);
  out->set_names_limit(command.names_limit);
}

absl::StatusOr<Command> Decode(const internal::v1::Command& in) {
  absl::StatusOr<Command> c = DecodeCommand(in);
  if (!c.ok()) return Within(pb::Command::descriptor()->full_name(), c.status());
  return c;
}

}  // namespace baton::apply
