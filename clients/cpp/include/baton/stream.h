// Stream: the handle of a server stream the client reads in the background
// (Event::Watch, Queue::Consume). Messages go to a callback as they arrive;
// the end, with its status, goes to another callback, exactly once.
//
// Dropping the handle does not end the stream; Cancel() does (the end
// callback then gets CANCELLED). Callbacks run on a gRPC thread, one at a
// time per stream; they must not block for long (the next message is read
// after the callback returns) and must not call blocking forms of the client.
//
// Thread safety: a Stream may be copied and used from any thread.
#pragma once

#include <memory>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace baton {

namespace internal {
class StreamState;
}  // namespace internal

class Stream {
 public:
  // An empty handle: ended, nothing to cancel.
  Stream() = default;
  explicit Stream(std::shared_ptr<internal::StreamState> state) : state_(std::move(state)) {}

  // Ends the stream (gRPC TryCancel). Idempotent; any thread.
  void Cancel() const;
  // True once the end callback has returned.
  bool done() const;
  // Blocks until the stream has ended; returns how it ended.
  absl::Status Wait() const;
  // As Wait, for at most `timeout`; returns done().
  bool WaitFor(absl::Duration timeout) const;

 private:
  std::shared_ptr<internal::StreamState> state_;
};

}  // namespace baton
