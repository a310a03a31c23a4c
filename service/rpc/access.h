// Authorisation in one place: what each request of the baton.v1 API needs
// of the call's principal (DESIGN.md §7), checked for unary calls and
// server-streaming calls by Drive (call.h) and for session-stream
// operations by StreamOps (session_stream.h), so both transports agree.
//
// A request needs, by its type:
//   - an access (read, write, admin) on every resource name it names: its
//     name, a condition's lock, a task id's work queue, a timer action's
//     target, a List's prefix; or only a known principal (sessions,
//     ServerInfo, ListMembers); SaveSnapshot and the membership changes
//     need admin on every name;
//   - if it names a session (a session_id field), that the session was
//     opened by the same principal, unless the principal is an admin.
//
// Threading: Authorize runs on the loop thread of the shard whose state it
// is given; the rules are built once, before any loop runs.
#pragma once

#include <google/protobuf/message.h>

#include "absl/status/status.h"
#include "service/security/auth.h"

namespace baton::rpc {

// Checks the names `request` acts on for `who`: PERMISSION_DENIED naming
// the name and the access missing. Sets *session to the session the request
// names (0: none), whose owner CheckSession (call.h) then checks.
absl::Status AuthorizeNames(const security::Principal& who,
                            const google::protobuf::Message& request, uint64_t* session);

// Whether `who` may use session `session` whose owner is `owner`.
absl::Status SessionAllowed(const security::Principal& who, uint64_t session,
                            const std::string& owner);

// Aborts if a request type of a baton.v1 method has no rule: a method added
// without deciding what it needs is a server that does not start.
void CheckEveryMethodHasARule();

}  // namespace baton::rpc
