// CallbackScope marks the current thread, while a scope is alive, as one on
// which a Core must not be destroyed:
//  - a gRPC callback: destroying a channel inside one of its own callbacks is
//    a known gRPC crash (grpc/grpc#37858, #37198; here it showed as a double
//    free in grpc_cq_internal_unref under ASan, when a coroutine resumed by a
//    callback dropped the last handle of its Client);
//  - a thread of the client's own that ~Core joins (the session stream's, a
//    session keeper's): it cannot join itself.
// A user's callback may drop the last handle of a Client, so every place where
// gRPC or one of those threads enters the client opens a scope, and the Core's
// deleter (Core::Connect) hands the destruction to a new thread while one is
// open. Captures that hold a Core must be released inside the scope (move them
// into a local first), not when gRPC destroys the callback afterwards.
//
// Thread safety: thread-local; a scope lives and dies on one thread.
#pragma once

namespace baton::internal {

class CallbackScope {
 public:
  CallbackScope() { ++depth_; }
  ~CallbackScope() { --depth_; }
  CallbackScope(const CallbackScope&) = delete;
  CallbackScope& operator=(const CallbackScope&) = delete;

  // True while a scope is open on this thread.
  static bool Active() { return depth_ > 0; }

 private:
  static inline thread_local int depth_ = 0;
};

}  // namespace baton::internal
