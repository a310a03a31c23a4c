// LostSignal: the lost signal of one holding (a lock or semaphore guard):
// fired once, with the reason, when the holding is known to be gone (its
// session was lost, or the server answered a refresh or release NOT_FOUND or
// FAILED_PRECONDITION). Callbacks run once each: on the thread that fires, or
// at once on the registering thread if it has fired already.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <grpcpp/alarm.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "callback_scope.h"
#include "proto_time.h"

namespace baton::internal {

class LostSignal {
 public:
  void Fire(absl::Status why) {
    std::vector<std::function<void(absl::Status)>> callbacks;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (fired_ || disarmed_) return;
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

  // The holding was released: the signal never fires from now on.
  void Disarm() {
    std::lock_guard<std::mutex> lock(mu_);
    disarmed_ = true;
    callbacks_.clear();
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
  bool disarmed_ = false;
  absl::Status why_;
  std::vector<std::function<void(absl::Status)>> callbacks_;
};

// LeaseWatch fires a lease-only holding's lost signal when its lease, as last
// known, runs out. Destroying it (release, refresh) cancels it.
class LeaseWatch {
 public:
  LeaseWatch(std::weak_ptr<LostSignal> signal, absl::Time expires_at, std::string what) {
    alarm_.Set(ToChrono(expires_at),
               [signal = std::move(signal), what = std::move(what)](bool fired) {
                 if (!fired) return;  // cancelled
                 CallbackScope scope;
                 if (auto s = signal.lock()) s->Fire(absl::AbortedError(what));
               });
  }

 private:
  grpc::Alarm alarm_;
};

}  // namespace baton::internal
