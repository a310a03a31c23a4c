// The on-disk format of LocalLog's write-ahead log (described for people in
// storage/README.md). Shared by the log and its tests; no I/O here.
//
// A segment file `wal-<seq>-<first index>.log` (both 16 lower-case hex
// digits) is a sequence of records, nothing else:
//
//   offset  size  field
//   0       4     crc     CRC32C of bytes [4, 16 + length): length, index, payload
//   4       4     length  payload bytes, little-endian, <= kMaxEntryBytes
//   8       8     index   the entry's log index, little-endian, >= 1
//   16      n     payload the entry
//
// The index inside the checksum makes a record that is intact but in the
// wrong place (a stale block, a copied file) fail the sequence check.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace baton::storage::wal {

inline constexpr size_t kHeaderBytes = 16;
// Larger proposals are rejected with INVALID_ARGUMENT; a larger length field
// on disk is corruption.
inline constexpr uint32_t kMaxEntryBytes = 64u << 20;

// Appends the record for (index, payload) to *out.
// REQUIRES: payload.size() <= kMaxEntryBytes.
void AppendRecord(uint64_t index, std::string_view payload, std::string* out);

enum class Decode {
  kOk,
  kShortHeader,   // fewer than kHeaderBytes left
  kBadLength,     // length field > kMaxEntryBytes
  kShortPayload,  // the payload runs past the end of the data
  kBadChecksum,
};
const char* DecodeName(Decode d);

struct Record {
  uint64_t index = 0;
  std::string_view payload;
  size_t size = 0;  // header + payload bytes
};

// Decodes the record at the start of `data` into *r (valid only if kOk).
Decode DecodeRecord(std::string_view data, Record* r);

std::string SegmentName(uint64_t seq, uint64_t first_index);
// Returns true if `name` is exactly a segment name, filling seq and first.
bool ParseSegmentName(std::string_view name, uint64_t* seq, uint64_t* first_index);

}  // namespace baton::storage::wal
