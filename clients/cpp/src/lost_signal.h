// LostSignal: the lost signal of one holding (a lock or semaphore guard):
// fired once, with the reason, when the holding is known to be gone (its
// session was lost, or the server answered a refresh or release NOT_FOUND or
// FAILED_PRECONDITION). Callbacks run once each: on the thread that fires, or
// at once on the registering thread if it has fired already.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace baton::internal {

class LostSignal {
 public:
  void Fire(absl::Status why) {
    std::vector<std::function<void(absl::Status)>> callbacks;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (fired_) return;
      fired_ = true;
      why_ = why;
      callbacks.swap(callbacks_);
    }
    for (auto& callback : callbacks) callback(why);
  }

  void OnLost(std::function<void(absl::Status)> callback) {
    absl::Status why;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!fired_) {
        callbacks_.push_back(std::move(callback));
        return;
      }
      why = why_;
    }
    callback(why);
  }

  bool fired() const {
    std::lock_guard<std::mutex> lock(mu_);
    return fired_;
  }

  absl::Status why() const {
    std::lock_guard<std::mutex> lock(mu_);
    return why_;
  }

 private:
  mutable std::mutex mu_;
  bool fired_ = false;
  absl::Status why_;
  std::vector<std::function<void(absl::Status)>> callbacks_;
};

}  // namespace baton::internal
