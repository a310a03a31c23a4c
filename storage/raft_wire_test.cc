// The C++ side of raft/PROTOCOL.md against the Go side's golden frames
// (raft/wire/testdata/frames.txt, one frame of every message, written by
// `go test ./wire -run Golden -update`): what batond encodes is byte for byte
// what baton-raftd decodes, and batond decodes what baton-raftd encodes.
// Also: damaged frames are errors, never a crash.
#include "storage/raft_wire.h"

#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace baton::storage::raftwire {
namespace {

// Frame name -> frame bytes (length prefix included).
std::map<std::string, std::string> Golden() {
  std::ifstream in(BATON_RAFT_FRAMES);
  EXPECT_TRUE(in.good()) << BATON_RAFT_FRAMES;
  std::map<std::string, std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string name, hex;
    fields >> name >> hex;
    out[name] = absl::HexStringToBytes(hex);
  }
  return out;
}

// The body of a frame: without its 4-byte length prefix.
std::string Body(const std::string& frame) { return frame.substr(4); }

TEST(RaftWireTest, WhatBatondSendsIsWhatBatonRaftdReads) {
  auto golden = Golden();
  EXPECT_EQ(Encode(Hello{42}), golden["Hello"]);
  EXPECT_EQ(Encode(Propose{7, "cmd"}), golden["Propose"]);
  EXPECT_EQ(Encode(Compact{9, "snap"}), golden["Compact"]);
  EXPECT_EQ(Encode(ReadIndex{3}), golden["ReadIndex"]);
  EXPECT_EQ(Encode(TransferLeadership{1, 2}), golden["TransferLeadership"]);
  EXPECT_EQ(Encode(AddMember{2, Member{2, "h2:1", "h2:2"}}), golden["AddMember"]);
  EXPECT_EQ(Encode(RemoveMember{3, 2}), golden["RemoveMember"]);
  EXPECT_EQ(Encode(ListMembers{4}), golden["ListMembers"]);
  EXPECT_EQ(Encode(Status{5}), golden["Status"]);
}

TEST(RaftWireTest, BatondReadsWhatBatonRaftdSends) {
  auto golden = Golden();
  auto ready = Decode(Body(golden["Ready"]));
  ASSERT_TRUE(ready.ok()) << ready.status();
  const auto& r = std::get<Ready>(*ready);
  EXPECT_EQ(r.last_committed, 10u);
  EXPECT_EQ(r.node_id, 1u);
  ASSERT_EQ(r.members.size(), 2u);
  EXPECT_EQ(r.members[0], (Member{1, "127.0.0.1:7380", "127.0.0.1:7379"}));
  EXPECT_EQ(r.members[1], (Member{2, "h2:1", "h2:2"}));

  auto committed = Decode(Body(golden["Committed"]));
  ASSERT_TRUE(committed.ok()) << committed.status();
  const auto& c = std::get<Committed>(*committed);
  EXPECT_EQ(c.index, 11u);
  EXPECT_EQ(c.term, 2u);
  EXPECT_EQ(c.cookie, 7u);
  EXPECT_EQ(c.data, "cmd");

  auto rejected = Decode(Body(golden["Rejected"]));
  ASSERT_TRUE(rejected.ok()) << rejected.status();
  const auto& rj = std::get<Rejected>(*rejected);
  EXPECT_EQ(rj.cookie, 7u);
  EXPECT_EQ(rj.code, 14);  // UNAVAILABLE
  EXPECT_TRUE(rj.maybe_committed);
  EXPECT_EQ(rj.leader_id, 2u);
  EXPECT_EQ(rj.leader_client_addr, "h2:2");
  EXPECT_EQ(rj.message, "lost");

  auto leadership = Decode(Body(golden["Leadership"]));
  ASSERT_TRUE(leadership.ok()) << leadership.status();
  const auto& l = std::get<Leadership>(*leadership);
  EXPECT_EQ(l.term, 3u);
  EXPECT_EQ(l.leader_id, 2u);
  EXPECT_EQ(l.leader_client_addr, "h2:2");
  EXPECT_TRUE(l.is_leader);

  // Every other message baton-raftd sends decodes to its own type.
  std::map<std::string, size_t> kinds = {
      {"InstallSnapshot", 4}, {"ReadState", 5},  {"ReadRejected", 6}, {"Reply", 7},
      {"StatusReply", 8},     {"Membership", 9}, {"Fatal", 10},       {"SnapshotRequest", 11}};
  for (const auto& [name, index] : kinds) {
    ASSERT_TRUE(golden.count(name)) << name << " is not in the golden file";
    auto m = Decode(Body(golden[name]));
    ASSERT_TRUE(m.ok()) << name << ": " << m.status();
    EXPECT_EQ(m->index(), index) << name;
  }
}

TEST(RaftWireTest, DamagedFramesAreErrorsNotCrashes) {
  auto golden = Golden();
  EXPECT_FALSE(Decode("").ok());
  EXPECT_FALSE(Decode(std::string(1, '\x7f')).ok());  // unknown type
  for (const char* name : {"Ready", "Committed", "Rejected", "StatusReply", "Membership"}) {
    std::string body = Body(golden[name]);
    // Every truncation of a message is refused.
    for (size_t n = 1; n < body.size(); ++n) {
      EXPECT_FALSE(Decode(body.substr(0, n)).ok()) << name << " cut to " << n << " bytes";
    }
  }
  // A member count far beyond what the bytes could hold.
  std::string ready = Body(golden["Ready"]);
  ready[17] = '\xff';
  ready[18] = '\xff';
  EXPECT_FALSE(Decode(ready).ok());
}

}  // namespace
}  // namespace baton::storage::raftwire
