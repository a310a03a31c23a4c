// Snapshots: the whole state of one shard's state machine as bytes, and back.
// With a snapshot taken after log entry N, the write-ahead log up to N can be
// dropped: restoring the snapshot and applying the entries after N gives the
// same state, and the same effects, as applying the whole log.
//
// Format (version 5; 4 had no retried request_ids, 3 no principals of handles, 2 no session owners;
// all are still read; 1 had no orphaned waiters): varint
// format version, shard index, shard count, then every field of ShardState and of the primitives it
// holds, in the order StateCodec::Fields lists them (state_codec.cc), encoded by the archive
// (service/primitives/archive.h): varints, length-prefixed strings and sequences, maps and sets in
// increasing key order. A timer's action is its command in the log's own form (codec.h),
// length-prefixed. No checksum: the file that holds a snapshot frames and checks it, as the log
// does its records.
//
// Changing the format (a field added to the state or a primitive, whose
// field-count check or StateCodec::Fields forced the change): increase
// kStateFormatVersion, and read the field only from versions that have it
// (`ar.version()`, archive.h). A build refuses versions it does not know; it
// reads versions 2 (its sessions get no owner), 3 (its holdings, items in
// flight and running tasks get no owner principal) and 4 (nothing noted as
// retried, ShardState::retried_) too.
//
// Thread-safety: pure functions of their arguments; the ShardState must not
// be used concurrently (it is used only by its shard's loop thread anyway).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "service/apply/shard_state.h"

namespace baton::apply {

inline constexpr uint64_t kStateFormatVersion = 5;

// The whole state of `state` as bytes. Deterministic: two states that hold the
// same data give the same bytes (hash containers are written in sorted key
// order). `version`: the layout of an older version (2 or more), which
// leaves out what that version did not store; for tests of reading old
// snapshots.
std::string SaveState(const ShardState& state, uint64_t version = kStateFormatVersion);

// Replaces `*state` with the state saved in `bytes`; on an error `*state` is
// left as it was.
// REQUIRES: *state was built with the same shard index and shard count as the
// saved state (both are saved; a mismatch is FAILED_PRECONDITION). Its limits
// may differ: they are not part of the state.
// Errors: DATA_LOSS, saying what failed to decode and where (truncated, value
// out of range, keys out of order, an unknown format version, trailing bytes,
// a timer action the command codec rejects). Safe on any input: it never
// crashes, and allocates no more than the input's size warrants.
[[nodiscard]] absl::Status RestoreState(std::string_view bytes, ShardState* state);

}  // namespace baton::apply
