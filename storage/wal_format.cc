#include "storage/wal_format.h"

#include <cstring>

#include "absl/strings/str_format.h"
#include "storage/crc32c.h"

namespace baton::storage::wal {
namespace {

void PutFixed32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
void PutFixed64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
uint32_t GetFixed32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
}
uint64_t GetFixed64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
}

uint32_t RecordCrc(const char* header, std::string_view payload) {
  uint32_t crc = crc32c::Extend(0, header + 4, kHeaderBytes - 4);
  return crc32c::Extend(crc, payload.data(), payload.size());
}

bool ParseHex16(std::string_view s, uint64_t* v) {
  if (s.size() != 16) return false;
  *v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return false;
    }
    *v = (*v << 4) | static_cast<uint64_t>(d);
  }
  return true;
}

}  // namespace

void AppendRecord(uint64_t index, std::string_view payload, std::string* out) {
  char header[kHeaderBytes];
  PutFixed32(header + 4, static_cast<uint32_t>(payload.size()));
  PutFixed64(header + 8, index);
  PutFixed32(header, RecordCrc(header, payload));
  out->append(header, kHeaderBytes);
  out->append(payload);
}

const char* DecodeName(Decode d) {
  switch (d) {
    case Decode::kOk:
      return "ok";
    case Decode::kShortHeader:
      return "short header";
    case Decode::kBadLength:
      return "length out of range";
    case Decode::kShortPayload:
      return "short payload";
    case Decode::kBadChecksum:
      return "checksum mismatch";
  }
  return "?";
}

Decode DecodeRecord(std::string_view data, Record* r) {
  if (data.size() < kHeaderBytes) return Decode::kShortHeader;
  uint32_t length = GetFixed32(data.data() + 4);
  if (length > kMaxEntryBytes) return Decode::kBadLength;
  if (data.size() - kHeaderBytes < length) return Decode::kShortPayload;
  std::string_view payload = data.substr(kHeaderBytes, length);
  if (GetFixed32(data.data()) != RecordCrc(data.data(), payload)) return Decode::kBadChecksum;
  r->index = GetFixed64(data.data() + 8);
  r->payload = payload;
  r->size = kHeaderBytes + length;
  return Decode::kOk;
}

std::string SegmentName(uint64_t seq, uint64_t first_index) {
  return absl::StrFormat("wal-%016x-%016x.log", seq, first_index);
}

bool ParseSegmentName(std::string_view name, uint64_t* seq, uint64_t* first_index) {
  // wal-<16 hex>-<16 hex>.log
  if (name.size() != 4 + 16 + 1 + 16 + 4) return false;
  if (name.substr(0, 4) != "wal-" || name[20] != '-' || name.substr(37) != ".log") return false;
  return ParseHex16(name.substr(4, 16), seq) && ParseHex16(name.substr(21, 16), first_index);
}

}  // namespace baton::storage::wal
