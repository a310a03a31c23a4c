#include "service/apply/state_codec.h"

#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "baton/internal/v1/command.pb.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "service/apply/codec.h"
#include "service/primitives/archive.h"
#include "service/primitives/field_count.h"

namespace baton::apply {

namespace archive = primitives::archive;
using primitives::FieldCount;

// The friend of ShardState that lists its fields once (Fields), and stores
// the types private to it. It is also the archive's Hooks: the archive calls
// StateCodec::Serialize for the values it cannot store by itself.
struct StateCodec {
  using Resource = ShardState::Resource;
  using Session = ShardState::Session;
  using TimerKey = ShardState::TimerKey;
  using TimerKind = ShardState::TimerKind;
  using WaiterLoc = ShardState::WaiterLoc;
  using GrantKey = ShardState::GrantKey;
  using Writer = archive::Writer<StateCodec>;
  using Reader = archive::Reader<StateCodec>;

  // Every member of ShardState but its construction parameters (shard_,
  // shard_count_, limits_), in stored order.
  static auto Fields(ShardState& s) {
    return std::make_tuple(
        archive::Named("shutting_down", s.shutting_down_),
        archive::Named("resources", s.resources_),
        archive::Named("waiters_by_op", s.waiters_by_op_),
        archive::Named("waiters_by_id", s.waiters_by_id_),
        archive::Named("lease_names", s.lease_names_),
        archive::Named("receipt_names", s.receipt_names_),
        archive::Named("delayed_names", s.delayed_names_),
        archive::Named("future_names", s.future_names_),
        archive::Named("timer_names", s.timer_names_), archive::Named("task_names", s.task_names_),
        archive::Named("timer_actions", s.timer_actions_), archive::Named("sessions", s.sessions_),
        archive::Named("live_sessions", s.live_sessions_),
        archive::Named("session_refs", s.session_refs_), archive::Named("timers", s.timers_),
        archive::Named("last_token", s.last_token_),
        archive::Named("next_session_seq", s.next_session_seq_),
        archive::Named("next_waiter_id", s.next_waiter_id_),
        archive::Named("next_delivery", s.next_delivery_),
        archive::Named("next_item_id", s.next_item_id_),
        archive::Named("next_receipt", s.next_receipt_),
        archive::Named("next_future_timer", s.next_future_timer_),
        archive::Named("next_timer_seq", s.next_timer_seq_),
        archive::Named("next_task_seq", s.next_task_seq_),
        archive::Named("queue_bytes", s.queue_bytes_), archive::Named("orphans", s.orphans_),
        archive::Named("unclaimed", s.unclaimed_),
        archive::Named("orphan_grace_end", s.orphan_grace_end_),
        // Version 3 on.
        archive::Named("session_owners", s.session_owners_),
        // Version 5 on.
        archive::Named("retried", s.retried_));
  }
  // The first format version that stores field I of Fields.
  template <size_t I, size_t kAll>
  static constexpr uint64_t Since() {
    return I == kAll - 1 ? 5 : I == kAll - 2 ? 3 : 2;
  }
  // Reads or writes the fields of `fields` that format `version` stores.
  template <class Ar, class Tuple>
  static void Fields(Ar& ar, Tuple& fields, uint64_t version) {
    constexpr size_t kAll = std::tuple_size_v<Tuple>;
    [&]<size_t... I>(std::index_sequence<I...>) {
      ((version >= Since<I, kAll>() ? ar(std::get<I>(fields)) : void()), ...);
    }
    (std::make_index_sequence<kAll>());
  }

  // A resource: its kind, then the state of that kind (the kind decides the
  // variant's alternative, so the two cannot disagree), then its conditions.
  // (No field-count check: FieldCount cannot count through the variant, whose
  // first alternative has no default constructor. Resource has 4 fields.)
  template <class Ar>
  static void Serialize(Ar& ar, Resource& r) {
    ar(archive::Enum(r.kind, Kind::kLock, Kind::kTasks));
    if constexpr (Ar::kLoading) {
      if (!ar.ok()) return;
      r.state = BlankState(r.kind);
    }
    std::visit([&](auto& state) { ar(state); }, r.state);
    ar(r.conditions);
    if (ar.version() >= 4) ar(r.creator);
  }
  static Resource Blank(std::type_identity<Resource>) {
    return Resource{Kind::kLock, primitives::PermitPool(0), {}, 0};
  }
  // The state of a new resource of `kind`, to read into (capacity, parties
  // and options are read too).
  static ShardState::PrimitiveState BlankState(Kind kind) {
    return ShardState::HooksOf(kind).blank(0);
  }

  static_assert(FieldCount<Session>() == 5, "store the new field in StateCodec::Serialize");
  template <class Ar>
  static void Serialize(Ar& ar, Session& s) {
    ar(s.label, s.ttl, s.created, s.expires, s.streams);
  }

  static_assert(FieldCount<TimerKey>() == 3, "store the new field in StateCodec::Serialize");
  template <class Ar>
  static void Serialize(Ar& ar, TimerKey& k) {
    ar(k.at, archive::Enum(k.kind, TimerKind::kWaiter, TimerKind::kOrphanGrace), k.id);
  }

  static_assert(FieldCount<GrantKey>() == 3, "store the new field in StateCodec::Serialize");
  template <class Ar>
  static void Serialize(Ar& ar, GrantKey& k) {
    ar(k.name, k.session, k.request_id);
  }

  static_assert(FieldCount<WaiterLoc>() == 2, "store the new field in StateCodec::Serialize");
  template <class Ar>
  static void Serialize(Ar& ar, WaiterLoc& w) {
    ar(w.name, w.waiter_id);
  }

  // A timer's action: present or not, then the command in the log's form.
  static void Serialize(Writer& ar, std::shared_ptr<const Command>& action) {
    bool present = action != nullptr;
    ar(present);
    if (!present) return;
    internal::v1::Command m;
    Encode(*action, &m);
    std::string bytes;
    {
      google::protobuf::io::StringOutputStream stream(&bytes);
      google::protobuf::io::CodedOutputStream out(&stream);
      out.SetSerializationDeterministic(true);
      m.SerializeToCodedStream(&out);
    }
    ar(bytes);
  }
  static void Serialize(Reader& ar, std::shared_ptr<const Command>& action) {
    bool present = false;
    ar(present);
    action.reset();
    if (!ar.ok() || !present) return;
    std::string bytes;
    ar(bytes);
    if (!ar.ok()) return;
    internal::v1::Command m;
    if (!m.ParseFromString(bytes)) return ar.Fail("timer action: not a Command message");
    absl::StatusOr<Command> command = Decode(m);
    if (!command.ok()) return ar.Fail(absl::StrCat("timer action: ", command.status().message()));
    action = std::make_shared<const Command>(*std::move(command));
  }

  static std::string Save(const ShardState& state, uint64_t version) {
    Writer ar;
    ar.set_version(version);
    ar.PutVarint(version);
    ar(state.shard_, state.shard_count_);
    // Fields needs a mutable state (the Reader shares it); the Writer only
    // reads through it.
    auto fields = Fields(const_cast<ShardState&>(state));
    Fields(ar, fields, version);
    return std::move(ar).Finish();
  }

  static absl::Status Restore(std::string_view bytes, ShardState* state) {
    Reader ar(bytes);
    uint64_t version = 0;
    if (!ar.GetVarint(version)) return ar.Finish();
    if (version > kStateFormatVersion || version < 2) {
      return absl::DataLossError(absl::StrCat("unknown snapshot format version ", version,
                                              " (this build reads ", kStateFormatVersion, ")"));
    }
    ar.set_version(version);
    uint32_t shard = 0, shard_count = 0;
    ar(archive::Named("shard", shard), archive::Named("shard_count", shard_count));
    if (!ar.ok()) return ar.Finish();
    if (shard != state->shard_ || shard_count != state->shard_count_) {
      return absl::FailedPreconditionError(
          absl::StrCat("the snapshot is of shard ", shard, " of ", shard_count,
                       "; this state is shard ", state->shard_, " of ", state->shard_count_));
    }
    // Read into a fresh state, so that a failure leaves *state as it was.
    ShardState fresh(state->shard_, state->shard_count_, state->limits_);
    // Older versions lack the later fields: version 2's sessions have no
    // owner, and before version 5 nothing was noted as retried.
    auto fresh_fields = Fields(fresh);
    Fields(ar, fresh_fields, version);
    if (absl::Status s = ar.Finish(); !s.ok()) return s;
    auto to = Fields(*state);
    auto from = Fields(fresh);
    [&]<size_t... I>(std::index_sequence<I...>) {
      (std::swap(std::get<I>(to).value, std::get<I>(from).value), ...);
    }
    (std::make_index_sequence<std::tuple_size_v<decltype(to)>>());
    state->owned_sessions_.clear();
    for (const auto& [id, owner] : state->session_owners_) ++state->owned_sessions_[owner];
    state->CountNames();
    return absl::OkStatus();
  }
};

std::string SaveState(const ShardState& state, uint64_t version) {
  return StateCodec::Save(state, version);
}

absl::Status RestoreState(std::string_view bytes, ShardState* state) {
  return StateCodec::Restore(bytes, state);
}

}  // namespace baton::apply
