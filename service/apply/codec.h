// The codec turns an apply::Command into its stored form, the protobuf
// baton.internal.v1.Command (proto/baton/internal/v1/command.proto), and
// back. The sequencer encodes every command it appends to the write-ahead
// log, and recovery (or a follower) decodes each entry before applying it,
// so a command replays exactly: Decode(Encode(c)) equals c, field for field,
// for every command (codec_test.cc).
//
// Thread-safety: pure functions of their arguments; call them from any
// thread.
//
// Adding a field to a command struct: add it to its message in
// command.proto (the next field number), map it in both directions in
// codec.cc, and set it in the command's full sample in codec_test.cc. The
// member counts that codec.cc checks at compile time, and the test's
// every-field-set check, fail until all three are done. Adding a command:
// a message and a field of `Command` (the next number) in command.proto, a
// ToProto/FromProto pair and a DecodeCase arm in codec.cc, a full sample in
// codec_test.cc; codec.cc does not compile without its ToProto, and the test
// fails without its sample.
#pragma once

#include "absl/status/statusor.h"
#include "baton/internal/v1/command.pb.h"
#include "service/apply/command.h"
#include "service/primitives/field_count.h"

namespace baton::apply {

// Encodes `command` into `out` (cleared first). Never fails.
// REQUIRES: a ScheduleTimer's action is set (the RPC layer always sets one);
// without it the message has no `action` and Decode rejects it.
void Encode(const Command& command, internal::v1::Command* out);

// Decodes a stored command. Errors: DATA_LOSS, naming the field, when `in`
// is not a command this build can apply exactly: no command set (or one
// added by a newer build), an enum value that is unspecified or unknown, a
// ScheduleTimer without its action, a value out of its C++ field's range,
// or fields this build does not know (written by a newer build; ignoring
// them would apply a different command than was logged). DATA_LOSS because
// the caller holds a log entry that it can neither apply nor skip, and no
// retry helps.
[[nodiscard]] absl::StatusOr<Command> Decode(const internal::v1::Command& in);

namespace codec_internal {

// The number of data members of the aggregate T (a command struct, or one
// nested in a command). codec.cc checks each struct's count against the
// fields it maps, so a field added to command.h is a compile error there
// until the codec maps it.
using primitives::FieldCount;

}  // namespace codec_internal
}  // namespace baton::apply
