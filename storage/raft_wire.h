// The messages batond and baton-raftd exchange over their local stream
// socket, as raft/PROTOCOL.md specifies them (raft/wire/wire.go is the Go
// side). batond encodes only what it sends (Hello ... Status) and decodes
// only what baton-raftd sends (Ready ... SnapshotRequest).
//
// A frame is a u32 little-endian length L, then L bytes: a u8 message type
// and the payload. Payload fields are fixed-width little-endian integers and
// byte strings (u32 length, then the bytes), in the order the structs below
// list them. Bytes after the fields a reader knows are ignored (a field may
// be appended later).
//
// Threading: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace baton::storage::raftwire {

// The largest frame (type byte + payload) either side accepts: 1 GiB.
inline constexpr uint32_t kMaxFrame = 1u << 30;

enum class Type : uint8_t {
  // batond -> baton-raftd
  kHello = 0x01,
  kPropose = 0x02,
  kCompact = 0x03,
  kReadIndex = 0x04,
  kTransferLeadership = 0x05,
  kAddMember = 0x06,
  kRemoveMember = 0x07,
  kListMembers = 0x08,
  kStatus = 0x09,
  // baton-raftd -> batond
  kReady = 0x81,
  kCommitted = 0x82,
  kRejected = 0x83,
  kLeadership = 0x84,
  kInstallSnapshot = 0x85,
  kReadState = 0x86,
  kReadRejected = 0x87,
  kReply = 0x88,
  kStatusReply = 0x89,
  kMembership = 0x8A,
  kFatal = 0x8B,
  kSnapshotRequest = 0x8C,
};

struct Member {
  uint64_t id = 0;
  std::string peer_addr;    // host:port of its baton-raftd peer listener
  std::string client_addr;  // host:port of the gRPC API its batond serves
  friend bool operator==(const Member&, const Member&) = default;
};

// ---- batond -> baton-raftd ----
struct Hello {
  uint64_t applied_index = 0;
};
struct Propose {
  uint64_t cookie = 0;
  std::string_view data;
};
struct Compact {
  uint64_t index = 0;
  std::string_view data;
};
struct ReadIndex {
  uint64_t ctx = 0;
};
struct TransferLeadership {
  uint64_t req_id = 0;
  uint64_t to = 0;
};
struct AddMember {
  uint64_t req_id = 0;
  Member member;
};
struct RemoveMember {
  uint64_t req_id = 0;
  uint64_t id = 0;
};
struct ListMembers {
  uint64_t req_id = 0;
};
struct Status {
  uint64_t req_id = 0;
};

// Each returns the whole frame, length prefix included.
std::string Encode(const Hello& m);
std::string Encode(const Propose& m);
std::string Encode(const Compact& m);
std::string Encode(const ReadIndex& m);
std::string Encode(const TransferLeadership& m);
std::string Encode(const AddMember& m);
std::string Encode(const RemoveMember& m);
std::string Encode(const ListMembers& m);
std::string Encode(const Status& m);

// ---- baton-raftd -> batond ----
// `code` fields are gRPC's (and absl::StatusCode's) numbers.
struct Ready {
  uint64_t last_committed = 0;
  uint64_t node_id = 0;
  std::vector<Member> members;
};
struct Committed {
  uint64_t index = 0;
  uint64_t term = 0;
  uint64_t cookie = 0;  // this connection's Propose cookie, or 0
  std::string data;
};
struct Rejected {
  uint64_t cookie = 0;
  uint8_t code = 0;
  bool maybe_committed = false;  // then it may still arrive as Committed, cookie 0
  uint64_t leader_id = 0;
  std::string leader_client_addr;
  std::string message;
};
struct Leadership {
  uint64_t term = 0;
  uint64_t leader_id = 0;
  std::string leader_client_addr;
  bool is_leader = false;
};
struct InstallSnapshot {
  uint64_t index = 0;
  uint64_t term = 0;
  std::string data;
};
struct ReadState {
  uint64_t ctx = 0;
  uint64_t index = 0;
};
struct ReadRejected {
  uint64_t ctx = 0;
  uint8_t code = 0;
  uint64_t leader_id = 0;
  std::string leader_client_addr;
  std::string message;
};
struct Reply {
  uint64_t req_id = 0;
  uint8_t code = 0;
  uint64_t leader_id = 0;
  std::string leader_client_addr;
  std::string message;
  std::vector<Member> members;
};
struct Progress {
  uint64_t id = 0;
  uint64_t match = 0;
};
struct StatusReply {
  uint64_t req_id = 0;
  uint8_t code = 0;  // not OK: the fields below are empty
  std::string message;
  uint64_t node_id = 0;
  uint64_t term = 0;
  uint64_t leader_id = 0;
  uint8_t state = 0;  // 0 follower, 1 candidate, 2 leader, 3 pre-candidate
  bool is_leader = false;
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
  uint64_t snapshot_index = 0;
  uint64_t last_index = 0;
  std::vector<Member> members;
  std::vector<Progress> progress;  // leader only
};
struct Membership {
  uint64_t index = 0;
  std::vector<Member> members;
};
struct Fatal {
  std::string message;
};
struct SnapshotRequest {
  uint64_t min_index = 0;
};

using Incoming = std::variant<Ready, Committed, Rejected, Leadership, InstallSnapshot, ReadState,
                              ReadRejected, Reply, StatusReply, Membership, Fatal, SnapshotRequest>;

// Decodes one frame's body (type byte and payload, without the length
// prefix). Errors: INVALID_ARGUMENT for an unknown type, a short payload or
// a byte string longer than what is left.
absl::StatusOr<Incoming> Decode(std::string_view body);

// A status from a wire code and message (OK for code 0).
absl::Status ToStatus(uint8_t code, const std::string& message);

}  // namespace baton::storage::raftwire
