#include "storage/local_log.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "storage/wal_format.h"

namespace baton::storage {
namespace {

// A batch buffer larger than this is given back after use rather than kept.
constexpr size_t kKeepBufferBytes = 16u << 20;

std::string ErrnoText(int err) {
  char buf[128];
  return ::strerror_r(err, buf, sizeof(buf));  // the GNU strerror_r, which returns the text
}

uint64_t IndexFieldAt(std::string_view data, size_t pos) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<uint8_t>(data[pos + 8 + i])} << (8 * i);
  return v;
}

// Returns the offset of the first intact record at or after `from` whose
// index could follow `next_index`, or npos. Recovery uses it to tell a torn
// tail (nothing intact after the damage) from damage in the middle of the
// last segment (intact records after it), which must not be cut away.
size_t FindIntactRecord(std::string_view data, size_t from, uint64_t next_index) {
  const uint64_t max_records = data.size() / wal::kHeaderBytes;
  for (size_t pos = from; pos + wal::kHeaderBytes <= data.size(); ++pos) {
    uint64_t index = IndexFieldAt(data, pos);
    if (index < next_index || index - next_index > max_records) continue;
    wal::Record r;
    if (wal::DecodeRecord(data.substr(pos), &r) == wal::Decode::kOk) return pos;
  }
  return std::string_view::npos;
}

absl::Status ReadFile(int fd, const std::string& path, std::string* out) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return absl::ErrnoToStatus(errno, absl::StrCat("stat ", path));
  out->resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out->size()) {
    ssize_t n = ::pread(fd, out->data() + done, out->size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::ErrnoToStatus(errno, absl::StrCat("read ", path));
    if (n == 0) break;  // shrank meanwhile; the caller sees a shorter file
    done += static_cast<size_t>(n);
  }
  out->resize(done);
  return absl::OkStatus();
}

std::string ParentOf(const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  size_t slash = d.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : d.substr(0, slash);
}

}  // namespace

LocalLog::LocalLog(Options options) : options_(std::move(options)), fs_(options_.fs) {}

LocalLog::~LocalLog() { Close(); }

std::string LocalLog::PathOf(uint64_t seq, uint64_t first_index) const {
  return absl::StrCat(options_.directory, "/", wal::SegmentName(seq, first_index));
}

absl::StatusOr<OpenResult> LocalLog::Open(uint64_t after_index, const ReplayFn& replay,
                                          LogCallbacks callbacks) {
  if (thread_.joinable() || !segments_.empty()) {
    return absl::FailedPreconditionError("LocalLog::Open called twice");
  }
  if (options_.directory.empty()) return absl::InvalidArgumentError("LocalLog: no directory");
  callbacks_ = std::move(callbacks);

  if (::mkdir(options_.directory.c_str(), 0755) == 0) {
    // The new directory's entry must survive a crash like the files in it.
    std::string parent = ParentOf(options_.directory);
    int fd;
    int err = fs_->Open(parent.c_str(), O_RDONLY | O_DIRECTORY, 0, &fd);
    if (err == 0) {
      if (options_.sync) err = fs_->Sync(fd);
      fs_->Close(fd);
    }
    if (err != 0) return absl::ErrnoToStatus(err, absl::StrCat("fsync ", parent));
  } else if (errno != EEXIST) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", options_.directory));
  }
  if (options_.lock_directory) {
    absl::StatusOr<FileLock> lock = FileLock::Acquire(options_.directory);
    if (!lock.ok()) return lock.status();
    lock_.emplace(*std::move(lock));
  }

  OpenResult result;
  absl::Status s = Recover(after_index, replay, &result);
  if (!s.ok()) {
    if (fd_ >= 0) fs_->Close(fd_);
    fd_ = -1;
    segments_.clear();
    lock_.reset();
    return s;
  }
  thread_ = std::thread(&LocalLog::Run, this);
  return result;
}

// Recovery rules (README.md "Recovery"): segments must form one unbroken
// chain of indexes from after_index + 1 on; damage is repaired only where an
// interrupted append can cause it, at the end of the last segment, and only
// if nothing intact follows it. Everything else is DATA_LOSS for a human.
absl::Status LocalLog::Recover(uint64_t after_index, const ReplayFn& replay, OpenResult* result) {
  const std::string& dir = options_.directory;
  std::vector<Segment> found;
  {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return absl::ErrnoToStatus(errno, absl::StrCat("cannot list ", dir));
    while (dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (!absl::StartsWith(name, "wal-")) continue;
      Segment s;
      s.path = absl::StrCat(dir, "/", name);
      if (!wal::ParseSegmentName(name, &s.seq, &s.first_index) || s.first_index == 0) {
        ::closedir(d);
        return absl::DataLossError(
            absl::StrCat(s.path,
                         ": not a segment name (wal-<16 hex seq>-<16 hex first index>.log); "
                         "a stray file here would be mistaken for log data: move it away"));
      }
      found.push_back(std::move(s));
    }
    ::closedir(d);
  }
  std::sort(found.begin(), found.end(),
            [](const Segment& a, const Segment& b) { return a.seq < b.seq; });
  for (size_t i = 1; i < found.size(); ++i) {
    if (found[i].seq != found[i - 1].seq + 1) {
      return absl::DataLossError(absl::StrFormat(
          "segments are not consecutive: %s is followed by %s (a segment is missing)",
          found[i - 1].path, found[i].path));
    }
    if (found[i].first_index < found[i - 1].first_index) {
      return absl::DataLossError(
          absl::StrFormat("%s starts at an index lower than %s", found[i].path, found[i - 1].path));
    }
  }

  if (found.empty()) {  // a new log, or a new directory after a snapshot restore
    next_index_ = after_index + 1;
    result->last_index = after_index;
    return CreateSegment(0, next_index_);
  }
  if (found[0].first_index - 1 > after_index) {
    return absl::DataLossError(absl::StrFormat(
        "%s starts at index %d, but the snapshot covers only through index %d: entries %d to %d "
        "are missing",
        found[0].path, found[0].first_index, after_index, after_index + 1,
        found[0].first_index - 1));
  }

  uint64_t next = 0;  // index the next record must have; 0: the segment's name says
  for (size_t i = 0; i < found.size(); ++i) {
    const Segment& seg = found[i];
    const bool last = i + 1 == found.size();
    // Every entry of this segment is <= after_index: the snapshot covers it,
    // and the next Compact deletes it. Not read.
    if (!last && found[i + 1].first_index - 1 <= after_index) continue;
    if (next != 0 && seg.first_index != next) {
      return absl::DataLossError(
          absl::StrFormat("gap between segments: %s ends at index %d but %s starts at index %d",
                          found[i - 1].path, next - 1, seg.path, seg.first_index));
    }
    int fd;
    if (int err = fs_->Open(seg.path.c_str(), last ? O_RDWR : O_RDONLY, 0, &fd); err != 0) {
      return absl::ErrnoToStatus(err, absl::StrCat("open ", seg.path));
    }
    std::string data;
    absl::Status s = ReadFile(fd, seg.path, &data);
    if (!s.ok()) {
      fs_->Close(fd);
      return s;
    }
    std::string_view view = data;
    uint64_t index = seg.first_index;
    size_t off = 0;
    while (off < view.size()) {
      wal::Record r;
      wal::Decode d = wal::DecodeRecord(view.substr(off), &r);
      if (d != wal::Decode::kOk) {
        size_t intact = last ? FindIntactRecord(view, off + 1, index) : 0;
        if (!last || intact != std::string_view::npos) {
          fs_->Close(fd);
          std::string why =
              last ? absl::StrFormat(", and an intact record follows at offset %d", intact)
                   : ", in a segment that is not the last one";
          return absl::DataLossError(absl::StrFormat("%s: corrupt record at offset %d (%s)%s",
                                                     seg.path, off, wal::DecodeName(d), why));
        }
        break;  // a torn tail: truncated below
      }
      if (r.index != index) {
        fs_->Close(fd);
        return absl::DataLossError(
            absl::StrFormat("%s: record at offset %d has index %d, expected %d (misplaced record)",
                            seg.path, off, r.index, index));
      }
      if (index > after_index) {
        s = replay(index, r.payload);
        if (!s.ok()) {
          fs_->Close(fd);
          return s;
        }
      }
      off += r.size;
      ++index;
    }
    next = index;
    if (!last) {
      fs_->Close(fd);
      continue;
    }
    if (off < view.size()) {
      // The end of an append that a crash interrupted (short header, short
      // payload, bad checksum of the last record, zeros): it was never
      // synced, so never reported committed. Cut it off and make the new
      // size durable before appending after it.
      wal::Record r;
      const char* what = wal::DecodeName(wal::DecodeRecord(view.substr(off), &r));
      int err = fs_->Truncate(fd, static_cast<off_t>(off));
      if (err == 0) {
        ++syncs_;
        err = fs_->DataSync(fd);
      }
      if (err != 0) {
        fs_->Close(fd);
        return absl::ErrnoToStatus(err, absl::StrCat("cannot truncate torn tail of ", seg.path));
      }
      result->notes.push_back(absl::StrFormat(
          "%s: truncated a torn tail of %d bytes at offset %d (%s); the log ends at index %d",
          seg.path, view.size() - off, off, what, index - 1));
    }
    fd_ = fd;
    offset_ = off;
  }
  segments_ = std::move(found);
  next_index_ = next;
  result->last_index = next - 1;
  if (result->last_index < after_index) {
    return absl::DataLossError(absl::StrFormat(
        "the log ends at index %d but the snapshot covers through index %d: entries that were "
        "synced are missing from %s",
        result->last_index, after_index, segments_.back().path));
  }
  return absl::OkStatus();
}

int LocalLog::SyncDirectory() {
  int fd;
  int err = fs_->Open(options_.directory.c_str(), O_RDONLY | O_DIRECTORY, 0, &fd);
  if (err != 0) return err;
  err = fs_->Sync(fd);
  fs_->Close(fd);
  return err;
}

// Returns RESOURCE_EXHAUSTED if the file cannot be created for lack of
// space (nothing changed: the caller may try again later), another error if
// the directory cannot be synced afterwards (fatal).
absl::Status LocalLog::CreateSegment(uint64_t seq, uint64_t first_index) {
  std::string path = PathOf(seq, first_index);
  int fd;
  if (int err = fs_->Open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0644, &fd); err != 0) {
    if (err == ENOSPC || err == EDQUOT) {
      return absl::ResourceExhaustedError(
          absl::StrCat("disk full: cannot create ", path, ": ", ErrnoText(err)));
    }
    return absl::InternalError(absl::StrCat("cannot create ", path, ": ", ErrnoText(err)));
  }
  // The new name must be durable before records in it are reported
  // committed: fdatasync of the file does not persist its directory entry.
  if (options_.sync) {
    if (int err = SyncDirectory(); err != 0) {
      fs_->Close(fd);
      return absl::InternalError(
          absl::StrCat("fsync of directory ", options_.directory, " failed: ", ErrnoText(err)));
    }
  }
  if (fd_ >= 0) fs_->Close(fd_);  // the previous segment is complete and synced
  fd_ = fd;
  offset_ = 0;
  segments_.push_back(Segment{seq, first_index, std::move(path)});
  ++segments_created_;
  return absl::OkStatus();
}

void LocalLog::Propose(Proposal p) {
  if (!queue_.Push(p)) Reject(p, absl::UnavailableError("log closed"));
}

void LocalLog::Compact(uint64_t through) { queue_.Compact(through); }

void LocalLog::Close() {
  absl::MutexLock lock(&close_mu_);
  if (closed_) return;
  closed_ = true;
  queue_.Close();
  if (thread_.joinable()) thread_.join();  // it drains the queue first
  if (fd_ >= 0) fs_->Close(fd_);
  fd_ = -1;
  lock_.reset();
}

LocalLog::Stats LocalLog::stats() const {
  Stats s;
  s.entries = entries_.load(std::memory_order_relaxed);
  s.batches = batches_.load(std::memory_order_relaxed);
  s.syncs = syncs_.load(std::memory_order_relaxed);
  s.bytes = bytes_.load(std::memory_order_relaxed);
  s.rejected = rejected_.load(std::memory_order_relaxed);
  s.segments_created = segments_created_.load(std::memory_order_relaxed);
  s.segments_deleted = segments_deleted_.load(std::memory_order_relaxed);
  return s;
}

void LocalLog::Run() {
  std::vector<Proposal> batch;
  for (;;) {
    ProposalQueue::Work work = queue_.TakeAll(&batch, compacted_through_);
    if (!batch.empty()) {
      WriteBatch(batch);
      batch.clear();
    }
    if (work.compact_through > compacted_through_) {
      CompactThrough(work.compact_through);
      compacted_through_ = work.compact_through;
    }
    if (work.closing) return;
  }
}

void LocalLog::WriteBatch(std::vector<Proposal>& batch) {
  accepted_.clear();
  if (failed_) {
    RejectAll(batch, absl::UnavailableError(
                         absl::StrCat("log stopped after a fatal error: ", failed_->message())));
    return;
  }
  if (offset_ >= options_.segment_bytes) {
    absl::Status s = CreateSegment(segments_.back().seq + 1, next_index_);
    if (absl::IsResourceExhausted(s)) {  // stay on the full segment; the next batch retries
      RejectAll(batch, s);
      return;
    }
    if (!s.ok()) {
      Fail(s);
      RejectAll(batch, absl::UnavailableError(absl::StrCat("log stopped: ", s.message())));
      return;
    }
  }

  buf_.clear();
  const uint64_t first = next_index_;
  uint64_t index = first;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].data.size() > wal::kMaxEntryBytes) {
      Reject(batch[i], absl::InvalidArgumentError(absl::StrFormat(
                           "log entry of %d bytes is larger than the limit of %d bytes",
                           batch[i].data.size(), wal::kMaxEntryBytes)));
      continue;
    }
    wal::AppendRecord(index++, batch[i].data, &buf_);
    accepted_.push_back(i);
  }
  if (accepted_.empty()) return;

  size_t written = 0;
  if (int err = fs_->WriteAt(fd_, buf_.data(), buf_.size(), static_cast<off_t>(offset_), &written);
      err != 0) {
    WriteFailed(err, written, batch);
    return;
  }
  // Durable before anyone hears "committed": the caller replies to clients
  // on that, and clients treat a reply as durable.
  if (options_.sync) {
    ++syncs_;
    auto sync_started = std::chrono::steady_clock::now();
    int err = fs_->DataSync(fd_);
    sync_nanos_.Observe(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                  std::chrono::steady_clock::now() - sync_started)
                                                  .count()));
    if (err != 0) {
      // Never retry a failed fsync ("fsyncgate", PostgreSQL 2018): Linux
      // may already have dropped the dirty pages it failed to write and
      // marked them clean, so a second fsync can succeed although the data
      // never reached the disk. What is in the file is unknown; only a
      // restart, which re-reads the file, can tell. So: stop.
      absl::Status why = absl::InternalError(
          absl::StrFormat("fdatasync of %s failed: %s", segments_.back().path, ErrnoText(err)));
      Fail(why);
      absl::Status unknown = absl::UnavailableError(
          absl::StrCat("outcome unknown (the entry may be found on restart): ", why.message()));
      for (size_t pos : accepted_) Reject(batch[pos], unknown);
      return;
    }
  }
  offset_ += buf_.size();
  next_index_ = index;
  entries_ += accepted_.size();
  bytes_ += buf_.size();
  ++batches_;
  batch_entries_.Observe(accepted_.size());
  index = first;
  for (size_t pos : accepted_) callbacks_.committed(index++, batch[pos].data, batch[pos].cookie);
  if (buf_.capacity() > kKeepBufferBytes) std::string().swap(buf_);
}

void LocalLog::WriteFailed(int err, size_t written, std::vector<Proposal>& batch) {
  const std::string& path = segments_.back().path;
  if (err == ENOSPC || err == EDQUOT) {
    // Disk full is a condition that can pass: undo the partial write so the
    // file ends with the last synced record, reject this batch, and let the
    // next batch try again. The new size is synced, so that the cut-off
    // bytes cannot reappear after a crash as entries we reported rejected.
    int undo = fs_->Truncate(fd_, static_cast<off_t>(offset_));
    if (undo == 0 && options_.sync && written > 0) {
      ++syncs_;
      undo = fs_->DataSync(fd_);  // a failure here is fatal like any failed sync
    }
    if (undo == 0) {
      absl::Status why = absl::ResourceExhaustedError(
          absl::StrFormat("disk full: cannot append %d bytes to %s at offset %d: %s", buf_.size(),
                          path, offset_, ErrnoText(err)));
      for (size_t pos : accepted_) Reject(batch[pos], why);
      return;
    }
    absl::Status why =
        absl::InternalError(absl::StrFormat("%s: cannot undo a partial write (%s) at offset %d: %s",
                                            path, ErrnoText(err), offset_, ErrnoText(undo)));
    Fail(why);
    absl::Status unknown = absl::UnavailableError(
        absl::StrCat("outcome unknown (the entry may be found on restart): ", why.message()));
    for (size_t pos : accepted_) Reject(batch[pos], unknown);
    return;
  }
  // Any other write error (EIO, ...) leaves the file in an unknown state.
  absl::Status why =
      absl::InternalError(absl::StrFormat("write of %d bytes to %s at offset %d failed: %s",
                                          buf_.size(), path, offset_, ErrnoText(err)));
  Fail(why);
  absl::Status unknown = absl::UnavailableError(
      absl::StrCat("outcome unknown (the entry may be found on restart): ", why.message()));
  for (size_t pos : accepted_) Reject(batch[pos], unknown);
}

// Deletes whole segments, oldest first, never the one being written. The
// directory is synced after each deletion so that a crash cannot keep an
// older segment while losing a newer one (a hole in the chain is DATA_LOSS
// at the next Open). A segment that cannot be deleted stays until the next
// Compact.
void LocalLog::CompactThrough(uint64_t through) {
  if (failed_) return;
  // Every entry of segments_[0] is below segments_[1].first_index.
  while (segments_.size() > 1 && segments_[1].first_index - 1 <= through) {
    int err = fs_->Unlink(segments_[0].path.c_str());
    if (err != 0 && err != ENOENT) return;
    segments_.erase(segments_.begin());
    ++segments_deleted_;
    if (options_.sync) {
      if (err = SyncDirectory(); err != 0) {
        Fail(absl::InternalError(
            absl::StrCat("fsync of directory ", options_.directory, " failed: ", ErrnoText(err))));
        return;
      }
    }
  }
}

void LocalLog::Fail(absl::Status why) {
  if (failed_) return;
  failed_ = why;
  if (callbacks_.fatal) callbacks_.fatal(std::move(why));
}

void LocalLog::Reject(Proposal& p, const absl::Status& why) {
  ++rejected_;
  if (callbacks_.rejected) callbacks_.rejected(p.cookie, why);
}

void LocalLog::RejectAll(std::vector<Proposal>& batch, const absl::Status& why) {
  for (Proposal& p : batch) Reject(p, why);
}

}  // namespace baton::storage
