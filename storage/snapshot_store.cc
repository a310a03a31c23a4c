#include "storage/snapshot_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "storage/crc32c.h"

namespace baton::storage {
namespace {

constexpr char kMagic[8] = {'B', 'A', 'T', 'O', 'N', 'S', 'N', 'P'};
constexpr uint32_t kFormat = 1;
constexpr size_t kHeaderBytes = sizeof(kMagic) + 4 + 8 + 4;
constexpr absl::string_view kPrefix = "snap-";
constexpr absl::string_view kSuffix = ".snap";

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}
uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

std::string ErrnoText(int err) { return absl::StrCat(std::strerror(err), " (errno ", err, ")"); }

absl::Status IoError(int err, const std::string& what) {
  std::string msg = absl::StrCat(what, ": ", ErrnoText(err));
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(msg);
  return absl::InternalError(msg);
}

// The index in a snapshot file name, or nullopt if `name` is not one.
std::optional<uint64_t> IndexOf(absl::string_view name) {
  if (name.size() <= kPrefix.size() + kSuffix.size() || !absl::StartsWith(name, kPrefix) ||
      !absl::EndsWith(name, kSuffix)) {
    return std::nullopt;
  }
  name.remove_prefix(kPrefix.size());
  name.remove_suffix(kSuffix.size());
  uint64_t index = 0;
  if (!absl::SimpleAtoi(name, &index)) return std::nullopt;
  return index;
}

}  // namespace

SnapshotStore::SnapshotStore(Options options) : options_(std::move(options)) {
  options_.keep = std::max<uint32_t>(options_.keep, 1);
}

std::string SnapshotStore::PathOf(uint64_t index) const {
  return absl::StrFormat("%s/%s%020d%s", options_.directory, kPrefix, index, kSuffix);
}

std::vector<uint64_t> SnapshotStore::List() const {
  std::vector<uint64_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(options_.directory, ec)) {
    if (auto index = IndexOf(e.path().filename().string())) out.push_back(*index);
  }
  std::sort(out.begin(), out.end());
  return out;
}

int SnapshotStore::SyncDirectory() {
  int fd = -1;
  if (int err = options_.fs->Open(options_.directory.c_str(), O_RDONLY | O_DIRECTORY, 0, &fd);
      err != 0) {
    return err;
  }
  int err = options_.fs->Sync(fd);
  options_.fs->Close(fd);
  return err;
}

absl::Status SnapshotStore::Write(const std::string& tmp, uint64_t index,
                                  const std::vector<std::string>& records) {
  int fd = -1;
  if (int err = options_.fs->Open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644, &fd); err != 0) {
    return IoError(err, absl::StrCat("cannot create ", tmp));
  }
  off_t offset = 0;
  uint32_t crc = 0;
  int err = 0;
  auto put = [&](std::string_view bytes) {
    if (err != 0 || bytes.empty()) return;
    size_t written = 0;
    err = options_.fs->WriteAt(fd, bytes.data(), bytes.size(), offset, &written);
    offset += static_cast<off_t>(bytes.size());
    crc = crc32c::Extend(crc, bytes.data(), bytes.size());
  };
  std::string head(kMagic, sizeof(kMagic));
  PutU32(&head, kFormat);
  PutU64(&head, index);
  PutU32(&head, static_cast<uint32_t>(records.size()));
  put(head);
  for (const std::string& r : records) {
    std::string frame;
    PutU32(&frame, static_cast<uint32_t>(r.size()));
    PutU32(&frame, crc32c::Value(r));
    put(frame);
    put(r);
  }
  std::string trailer;
  PutU32(&trailer, crc);
  put(trailer);
  if (err == 0 && options_.sync) err = options_.fs->DataSync(fd);
  int close_err = options_.fs->Close(fd);
  if (err == 0) err = close_err;
  if (err != 0) return IoError(err, absl::StrCat("cannot write ", tmp));
  return absl::OkStatus();
}

absl::Status SnapshotStore::Save(uint64_t index, const std::vector<std::string>& records) {
  for (const std::string& r : records) {
    if (r.size() > UINT32_MAX) {
      return absl::InvalidArgumentError(
          absl::StrCat("a snapshot record of ", r.size(), " bytes is over the 4 GiB limit"));
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(options_.directory, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create directory ", options_.directory, ": ", ec.message()));
  }
  // A .tmp left by a crash during an earlier Save is garbage.
  for (const auto& e : std::filesystem::directory_iterator(options_.directory, ec)) {
    if (e.path().extension() == ".tmp") options_.fs->Unlink(e.path().c_str());
  }
  std::string path = PathOf(index);
  std::string tmp = path + ".tmp";
  if (absl::Status st = Write(tmp, index, records); !st.ok()) {
    options_.fs->Unlink(tmp.c_str());
    return st;
  }
  if (int err = options_.fs->Rename(tmp.c_str(), path.c_str()); err != 0) {
    options_.fs->Unlink(tmp.c_str());
    return IoError(err, absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  if (options_.sync) {
    if (int err = SyncDirectory(); err != 0) {
      return IoError(err, absl::StrCat("fsync of directory ", options_.directory, " failed"));
    }
  }
  // Only once the new one is durable: drop the oldest beyond `keep`.
  std::vector<uint64_t> all = List();
  size_t keep = options_.keep;
  for (size_t i = 0; i + keep < all.size(); ++i) {
    if (all[i] >= index) break;
    options_.fs->Unlink(PathOf(all[i]).c_str());
  }
  return absl::OkStatus();
}

absl::StatusOr<SnapshotStore::Loaded> SnapshotStore::Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return Parse(data, path);
}

absl::StatusOr<SnapshotStore::Loaded> SnapshotStore::Parse(std::string_view data,
                                                           const std::string& what) {
  auto bad = [&](const std::string& why) {
    return absl::DataLossError(absl::StrCat("snapshot ", what, " is damaged: ", why));
  };
  if (data.size() < kHeaderBytes + 4) return bad("shorter than its header");
  if (std::memcmp(data.data(), kMagic, sizeof(kMagic)) != 0) return bad("not a snapshot file");
  uint32_t stored = GetU32(data.data() + data.size() - 4);
  if (crc32c::Extend(0, data.data(), data.size() - 4) != stored) {
    return bad("file checksum mismatch (truncated or corrupt)");
  }
  uint32_t format = GetU32(data.data() + 8);
  if (format != kFormat) {
    return bad(absl::StrCat("format ", format, " (this build reads format ", kFormat,
                            "): written by a newer batond?"));
  }
  Loaded out;
  out.index = GetU64(data.data() + 12);
  uint32_t count = GetU32(data.data() + 20);
  size_t pos = kHeaderBytes;
  size_t end = data.size() - 4;
  for (uint32_t i = 0; i < count; ++i) {
    if (end - pos < 8) return bad(absl::StrCat("record ", i, " of ", count, " is missing"));
    uint32_t len = GetU32(data.data() + pos);
    uint32_t crc = GetU32(data.data() + pos + 4);
    pos += 8;
    if (end - pos < len) return bad(absl::StrCat("record ", i, " runs past the end"));
    std::string_view r(data.data() + pos, len);
    if (crc32c::Value(r) != crc) return bad(absl::StrCat("record ", i, " checksum mismatch"));
    out.records.emplace_back(r);
    pos += len;
  }
  if (pos != end) return bad("bytes after the last record");
  return out;
}

absl::StatusOr<SnapshotStore::Loaded> SnapshotStore::LoadNewest() const {
  std::error_code ec;
  if (!std::filesystem::exists(options_.directory, ec)) return Loaded{};
  std::vector<uint64_t> all = List();
  std::vector<std::string> notes;
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    auto loaded = Read(PathOf(*it));
    if (loaded.ok()) {
      if (loaded->index != *it) {
        notes.push_back(
            absl::StrCat("skipped ", PathOf(*it), ": it says it covers index ", loaded->index));
        continue;
      }
      loaded->found = true;
      loaded->notes = std::move(notes);
      return std::move(*loaded);
    }
    notes.push_back(absl::StrCat("skipped ", loaded.status().message()));
  }
  Loaded none;
  none.notes = std::move(notes);
  return none;
}

}  // namespace baton::storage
