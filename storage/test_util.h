// Helpers for storage tests: a temporary directory removed at the end, and
// a recorder of a log's callbacks that tests can wait on (no sleeps).
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "storage/consensus_log.h"

namespace baton::storage::testutil {

// A fresh directory under the test's temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "baton_storage_XXXXXX";
    char* made = ::mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr) << pattern;
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Sub(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void WriteAll(const std::string& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  ASSERT_TRUE(out.good()) << path;
}

// Records every callback of a log. Thread-safe.
class Recorder {
 public:
  struct Committed {
    uint64_t index;
    std::string data;
    uint64_t cookie;
  };

  LogCallbacks Callbacks() {
    return LogCallbacks{
        .committed =
            [this](uint64_t index, std::string_view data, uint64_t cookie) {
              absl::MutexLock lock(&mu_);
              committed_.push_back({index, std::string(data), cookie});
            },
        .rejected =
            [this](uint64_t cookie, absl::Status why) {
              absl::MutexLock lock(&mu_);
              rejected_.emplace_back(cookie, std::move(why));
            },
        .fatal =
            [this](absl::Status why) {
              absl::MutexLock lock(&mu_);
              fatal_.push_back(std::move(why));
            },
    };
  }

  // Blocks until `n` proposals in all have been committed or rejected.
  void WaitForOutcomes(size_t n) {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return committed_.size() + rejected_.size() >= n;
    };
    mu_.Await(absl::Condition(&done));
  }

  std::vector<Committed> committed() {
    absl::MutexLock lock(&mu_);
    return committed_;
  }
  std::vector<std::pair<uint64_t, absl::Status>> rejected() {
    absl::MutexLock lock(&mu_);
    return rejected_;
  }
  std::vector<absl::Status> fatal() {
    absl::MutexLock lock(&mu_);
    return fatal_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Committed> committed_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<uint64_t, absl::Status>> rejected_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Status> fatal_ ABSL_GUARDED_BY(mu_);
};

// Collects what Open replays.
struct Replayed {
  std::vector<std::pair<uint64_t, std::string>> entries;
  ReplayFn Fn() {
    return [this](uint64_t index, std::string_view data) {
      entries.emplace_back(index, std::string(data));
      return absl::OkStatus();
    };
  }
};

}  // namespace baton::storage::testutil
