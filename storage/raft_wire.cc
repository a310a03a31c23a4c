#include "storage/raft_wire.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace baton::storage::raftwire {
namespace {

class Encoder {
 public:
  explicit Encoder(Type t) {
    buf_.resize(4);  // the length, filled in by Frame()
    U8(static_cast<uint8_t>(t));
  }
  void U8(uint8_t v) { buf_.push_back(static_cast<char>(v)); }
  void U32(uint32_t v) {
    for (int i = 0; i < 4; ++i) buf_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void U64(uint64_t v) {
    for (int i = 0; i < 8; ++i) buf_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void Bytes(std::string_view b) {
    U32(static_cast<uint32_t>(b.size()));
    buf_.append(b.data(), b.size());
  }
  void Member(const raftwire::Member& m) {
    U64(m.id);
    Bytes(m.peer_addr);
    Bytes(m.client_addr);
  }
  std::string Frame() && {
    uint32_t n = static_cast<uint32_t>(buf_.size() - 4);
    for (int i = 0; i < 4; ++i) buf_[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    return std::move(buf_);
  }

 private:
  std::string buf_;
};

// Reads fields in order; the first short read sets the error and every read
// after it returns zero values.
class Decoder {
 public:
  explicit Decoder(std::string_view b) : rest_(b) {}
  bool ok() const { return ok_; }

  uint8_t U8() { return static_cast<uint8_t>(Fixed(1)); }
  bool Bool() { return U8() != 0; }
  uint32_t U32() { return static_cast<uint32_t>(Fixed(4)); }
  uint64_t U64() { return Fixed(8); }
  std::string Bytes() {
    uint32_t n = U32();
    if (!ok_ || n > rest_.size()) return Fail(), std::string();
    std::string out(rest_.substr(0, n));
    rest_.remove_prefix(n);
    return out;
  }
  raftwire::Member Member() {
    raftwire::Member m;
    m.id = U64();
    m.peer_addr = Bytes();
    m.client_addr = Bytes();
    return m;
  }
  std::vector<raftwire::Member> Members() {
    std::vector<raftwire::Member> out;
    uint32_t n = U32();
    // Each member takes at least 16 bytes: a count beyond that is damage.
    if (!ok_ || n > rest_.size() / 16) return Fail(), out;
    for (uint32_t i = 0; i < n && ok_; ++i) out.push_back(Member());
    return out;
  }
  std::vector<Progress> Progresses() {
    std::vector<Progress> out;
    uint32_t n = U32();
    if (!ok_ || n > rest_.size() / 16) return Fail(), out;
    for (uint32_t i = 0; i < n; ++i) out.push_back(Progress{U64(), U64()});
    return out;
  }

 private:
  uint64_t Fixed(size_t n) {
    if (!ok_ || rest_.size() < n) return Fail(), 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i)
      v |= static_cast<uint64_t>(static_cast<uint8_t>(rest_[i])) << (8 * i);
    rest_.remove_prefix(n);
    return v;
  }
  void Fail() { ok_ = false; }

  std::string_view rest_;
  bool ok_ = true;
};

template <class M>
absl::StatusOr<Incoming> Done(const Decoder& d, M m, const char* what) {
  if (!d.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("baton-raftd sent a short or damaged ", what, " message"));
  }
  return Incoming(std::move(m));
}

}  // namespace

std::string Encode(const Hello& m) {
  Encoder e(Type::kHello);
  e.U64(m.applied_index);
  return std::move(e).Frame();
}

std::string Encode(const Propose& m) {
  Encoder e(Type::kPropose);
  e.U64(m.cookie);
  e.Bytes(m.data);
  return std::move(e).Frame();
}

std::string Encode(const Compact& m) {
  Encoder e(Type::kCompact);
  e.U64(m.index);
  e.Bytes(m.data);
  return std::move(e).Frame();
}

std::string Encode(const ReadIndex& m) {
  Encoder e(Type::kReadIndex);
  e.U64(m.ctx);
  return std::move(e).Frame();
}

std::string Encode(const TransferLeadership& m) {
  Encoder e(Type::kTransferLeadership);
  e.U64(m.req_id);
  e.U64(m.to);
  return std::move(e).Frame();
}

std::string Encode(const AddMember& m) {
  Encoder e(Type::kAddMember);
  e.U64(m.req_id);
  e.Member(m.member);
  return std::move(e).Frame();
}

std::string Encode(const RemoveMember& m) {
  Encoder e(Type::kRemoveMember);
  e.U64(m.req_id);
  e.U64(m.id);
  return std::move(e).Frame();
}

std::string Encode(const ListMembers& m) {
  Encoder e(Type::kListMembers);
  e.U64(m.req_id);
  return std::move(e).Frame();
}

std::string Encode(const Status& m) {
  Encoder e(Type::kStatus);
  e.U64(m.req_id);
  return std::move(e).Frame();
}

absl::StatusOr<Incoming> Decode(std::string_view body) {
  if (body.empty()) return absl::InvalidArgumentError("baton-raftd sent an empty frame");
  auto type = static_cast<Type>(static_cast<uint8_t>(body[0]));
  Decoder d(body.substr(1));
  switch (type) {
    case Type::kReady: {
      Ready m;
      m.last_committed = d.U64();
      m.node_id = d.U64();
      m.members = d.Members();
      return Done(d, std::move(m), "READY");
    }
    case Type::kCommitted: {
      Committed m;
      m.index = d.U64();
      m.term = d.U64();
      m.cookie = d.U64();
      m.data = d.Bytes();
      return Done(d, std::move(m), "COMMITTED");
    }
    case Type::kRejected: {
      Rejected m;
      m.cookie = d.U64();
      m.code = d.U8();
      m.maybe_committed = d.Bool();
      m.leader_id = d.U64();
      m.leader_client_addr = d.Bytes();
      m.message = d.Bytes();
      return Done(d, std::move(m), "REJECTED");
    }
    case Type::kLeadership: {
      Leadership m;
      m.term = d.U64();
      m.leader_id = d.U64();
      m.leader_client_addr = d.Bytes();
      m.is_leader = d.Bool();
      return Done(d, std::move(m), "LEADERSHIP");
    }
    case Type::kInstallSnapshot: {
      InstallSnapshot m;
      m.index = d.U64();
      m.term = d.U64();
      m.data = d.Bytes();
      return Done(d, std::move(m), "INSTALL_SNAPSHOT");
    }
    case Type::kReadState: {
      ReadState m;
      m.ctx = d.U64();
      m.index = d.U64();
      return Done(d, std::move(m), "READ_STATE");
    }
    case Type::kReadRejected: {
      ReadRejected m;
      m.ctx = d.U64();
      m.code = d.U8();
      m.leader_id = d.U64();
      m.leader_client_addr = d.Bytes();
      m.message = d.Bytes();
      return Done(d, std::move(m), "READ_REJECTED");
    }
    case Type::kReply: {
      Reply m;
      m.req_id = d.U64();
      m.code = d.U8();
      m.leader_id = d.U64();
      m.leader_client_addr = d.Bytes();
      m.message = d.Bytes();
      m.members = d.Members();
      return Done(d, std::move(m), "REPLY");
    }
    case Type::kStatusReply: {
      StatusReply m;
      m.req_id = d.U64();
      m.code = d.U8();
      m.message = d.Bytes();
      m.node_id = d.U64();
      m.term = d.U64();
      m.leader_id = d.U64();
      m.state = d.U8();
      m.is_leader = d.Bool();
      m.commit_index = d.U64();
      m.applied_index = d.U64();
      m.snapshot_index = d.U64();
      m.last_index = d.U64();
      m.members = d.Members();
      m.progress = d.Progresses();
      return Done(d, std::move(m), "STATUS_REPLY");
    }
    case Type::kMembership: {
      Membership m;
      m.index = d.U64();
      m.members = d.Members();
      return Done(d, std::move(m), "MEMBERSHIP");
    }
    case Type::kFatal: {
      Fatal m;
      m.message = d.Bytes();
      return Done(d, std::move(m), "FATAL");
    }
    case Type::kSnapshotRequest: {
      SnapshotRequest m;
      m.min_index = d.U64();
      return Done(d, std::move(m), "SNAPSHOT_REQUEST");
    }
    default:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("baton-raftd sent a frame of unknown type 0x",
                                                 absl::Hex(static_cast<uint8_t>(body[0]))));
}

absl::Status ToStatus(uint8_t code, const std::string& message) {
  if (code == 0) return absl::OkStatus();
  if (code > 16) code = static_cast<uint8_t>(absl::StatusCode::kUnknown);
  return absl::Status(static_cast<absl::StatusCode>(code), message);
}

}  // namespace baton::storage::raftwire
