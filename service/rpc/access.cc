// The rule of every baton.v1 request type, and the check.
#include "service/rpc/access.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "baton/v1/admin.pb.h"
#include "baton/v1/barrier.pb.h"
#include "baton/v1/condition.pb.h"
#include "baton/v1/event.pb.h"
#include "baton/v1/future.pb.h"
#include "baton/v1/lock.pb.h"
#include "baton/v1/queue.pb.h"
#include "baton/v1/semaphore.pb.h"
#include "baton/v1/session.pb.h"
#include "baton/v1/stream.pb.h"
#include "baton/v1/task.pb.h"
#include "baton/v1/timer.pb.h"

namespace baton::rpc {

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using security::Access;
using Names = absl::InlinedVector<absl::string_view, 4>;

struct Rule {
  Access access = Access::kNone;
  // The resource names the request acts on (none: only a known principal).
  void (*names)(const Message&, Names&) = nullptr;
  const FieldDescriptor* session_field = nullptr;  // a uint64 session_id
};

template <class Req>
void ByName(const Message& m, Names& out) {
  out.push_back(static_cast<const Req&>(m).name());
}

// The work queue of a task id ("<queue>#<n>"); a malformed id is checked as
// a whole (and refused by the handler anyway).
absl::string_view QueueOf(absl::string_view task_id) {
  size_t hash = task_id.rfind('#');
  return hash == absl::string_view::npos || hash == 0 ? task_id : task_id.substr(0, hash);
}

template <class Req>
void ByTaskId(const Message& m, Names& out) {
  out.push_back(QueueOf(static_cast<const Req&>(m).task_id()));
}

void TimerNames(const Message& m, Names& out) {
  const auto& r = static_cast<const v1::ScheduleTimerRequest&>(m);
  out.push_back(r.name());
  const v1::TimerAction& a = r.action();
  switch (a.action_case()) {
    case v1::TimerAction::kSetEvent:
      out.push_back(a.set_event().name());
      break;
    case v1::TimerAction::kClearEvent:
      out.push_back(a.clear_event().name());
      break;
    case v1::TimerAction::kPut:
      out.push_back(a.put().queue());
      break;
    case v1::TimerAction::kSetFuture:
      out.push_back(a.set_future().name());
      break;
    case v1::TimerAction::kSubmitTask:
      out.push_back(a.submit_task().queue());
      break;
    case v1::TimerAction::ACTION_NOT_SET:
      break;
  }
}

void WaitTasksNames(const Message& m, Names& out) {
  const auto& r = static_cast<const v1::WaitTasksRequest&>(m);
  for (const std::string& id : r.task_ids()) out.push_back(QueueOf(id));
  if (!r.queue().empty()) out.push_back(r.queue());
}

void Everything(const Message&, Names& out) { out.push_back(""); }

using Rules = absl::flat_hash_map<const Descriptor*, Rule>;

template <class Req>
void Add(Rules& rules, Access access, void (*names)(const Message&, Names&)) {
  Rule rule{access, names, Req::descriptor()->FindFieldByName("session_id")};
  if (rule.session_field != nullptr && rule.session_field->type() != FieldDescriptor::TYPE_UINT64) {
    rule.session_field = nullptr;
  }
  rules[Req::descriptor()] = rule;
}

const Rules& AllRules() {
  static const Rules* rules = [] {
    auto* r = new Rules();
    constexpr Access kRead = Access::kRead, kWrite = Access::kWrite, kAdmin = Access::kAdmin,
                     kKnown = Access::kNone;
    // Sessions and the server: a known principal; sessions by their owner.
    Add<v1::OpenSessionRequest>(*r, kKnown, nullptr);
    Add<v1::KeepAliveRequest>(*r, kKnown, nullptr);
    Add<v1::CloseSessionRequest>(*r, kKnown, nullptr);
    Add<v1::DescribeSessionRequest>(*r, kKnown, nullptr);
    Add<v1::ServerInfoRequest>(*r, kKnown, nullptr);
    Add<v1::SaveSnapshotRequest>(*r, kAdmin, &Everything);
    // Cluster membership: anyone known may look; changing it is an admin's.
    Add<v1::ListMembersRequest>(*r, kKnown, nullptr);
    Add<v1::AddMemberRequest>(*r, kAdmin, &Everything);
    Add<v1::RemoveMemberRequest>(*r, kAdmin, &Everything);
    Add<v1::TransferLeadershipRequest>(*r, kAdmin, &Everything);
    // Reading: inspecting, waiting, watching.
    Add<v1::ListRequest>(*r, kRead, [](const Message& m, Names& out) {
      out.push_back(static_cast<const v1::ListRequest&>(m).prefix());
    });
    Add<v1::DescribeRequest>(*r, kRead, &ByName<v1::DescribeRequest>);
    Add<v1::WaitEventRequest>(*r, kRead, &ByName<v1::WaitEventRequest>);
    Add<v1::WatchEventRequest>(*r, kRead, &ByName<v1::WatchEventRequest>);
    Add<v1::AwaitFutureRequest>(*r, kRead, &ByName<v1::AwaitFutureRequest>);
    Add<v1::JoinRequest>(*r, kRead, &ByName<v1::JoinRequest>);
    Add<v1::AwaitTaskRequest>(*r, kRead, &ByTaskId<v1::AwaitTaskRequest>);
    Add<v1::WaitTasksRequest>(*r, kRead, &WaitTasksNames);
    // Writing: everything that changes a resource or takes from it.
    Add<v1::AcquireLockRequest>(*r, kWrite, &ByName<v1::AcquireLockRequest>);
    Add<v1::ReleaseLockRequest>(*r, kWrite, &ByName<v1::ReleaseLockRequest>);
    Add<v1::RefreshLockRequest>(*r, kWrite, &ByName<v1::RefreshLockRequest>);
    Add<v1::AcquireSemaphoreRequest>(*r, kWrite, &ByName<v1::AcquireSemaphoreRequest>);
    Add<v1::ReleaseSemaphoreRequest>(*r, kWrite, &ByName<v1::ReleaseSemaphoreRequest>);
    Add<v1::RefreshSemaphoreRequest>(*r, kWrite, &ByName<v1::RefreshSemaphoreRequest>);
    Add<v1::DeleteSemaphoreRequest>(*r, kWrite, &ByName<v1::DeleteSemaphoreRequest>);
    Add<v1::SetEventRequest>(*r, kWrite, &ByName<v1::SetEventRequest>);
    Add<v1::ClearEventRequest>(*r, kWrite, &ByName<v1::ClearEventRequest>);
    // A condition lives under its lock: the lock's name decides.
    Add<v1::ConditionWaitRequest>(*r, kWrite, [](const Message& m, Names& out) {
      out.push_back(static_cast<const v1::ConditionWaitRequest&>(m).lock());
    });
    Add<v1::NotifyRequest>(*r, kWrite, [](const Message& m, Names& out) {
      out.push_back(static_cast<const v1::NotifyRequest&>(m).lock());
    });
    Add<v1::BarrierWaitRequest>(*r, kWrite, &ByName<v1::BarrierWaitRequest>);
    Add<v1::BarrierAbortRequest>(*r, kWrite, &ByName<v1::BarrierAbortRequest>);
    Add<v1::BarrierResetRequest>(*r, kWrite, &ByName<v1::BarrierResetRequest>);
    Add<v1::PutRequest>(*r, kWrite, &ByName<v1::PutRequest>);
    Add<v1::GetRequest>(*r, kWrite, &ByName<v1::GetRequest>);
    Add<v1::AckRequest>(*r, kWrite, &ByName<v1::AckRequest>);
    Add<v1::NackRequest>(*r, kWrite, &ByName<v1::NackRequest>);
    Add<v1::PurgeRequest>(*r, kWrite, &ByName<v1::PurgeRequest>);
    Add<v1::DeleteQueueRequest>(*r, kWrite, &ByName<v1::DeleteQueueRequest>);
    Add<v1::ConsumeRequest>(*r, kWrite, &ByName<v1::ConsumeRequest>);
    Add<v1::SetResultRequest>(*r, kWrite, &ByName<v1::SetResultRequest>);
    Add<v1::SetExceptionRequest>(*r, kWrite, &ByName<v1::SetExceptionRequest>);
    Add<v1::CancelFutureRequest>(*r, kWrite, &ByName<v1::CancelFutureRequest>);
    Add<v1::SubmitTaskRequest>(*r, kWrite, [](const Message& m, Names& out) {
      out.push_back(static_cast<const v1::SubmitTaskRequest&>(m).queue());
    });
    Add<v1::TakeTaskRequest>(*r, kWrite, [](const Message& m, Names& out) {
      out.push_back(static_cast<const v1::TakeTaskRequest&>(m).queue());
    });
    Add<v1::TaskHeartbeatRequest>(*r, kWrite, &ByTaskId<v1::TaskHeartbeatRequest>);
    Add<v1::CompleteTaskRequest>(*r, kWrite, &ByTaskId<v1::CompleteTaskRequest>);
    Add<v1::CancelTaskRequest>(*r, kWrite, &ByTaskId<v1::CancelTaskRequest>);
    Add<v1::ScheduleTimerRequest>(*r, kWrite, &TimerNames);
    Add<v1::CancelTimerRequest>(*r, kWrite, &ByName<v1::CancelTimerRequest>);
    // The two request streams: checked per message by their handlers.
    Add<v1::StreamRequest>(*r, kKnown, nullptr);
    return r;
  }();
  return *rules;
}

}  // namespace

absl::Status SessionAllowed(const security::Principal& who, uint64_t session,
                            const std::string& owner) {
  if (owner == who.name || who.admin) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("session ", session,
                                                  " belongs to another principal; principal '",
                                                  who.name, "' may use only its own sessions"));
}

absl::Status AuthorizeNames(const security::Principal& who, const Message& request,
                            uint64_t* session) {
  *session = 0;
  const Rules& rules = AllRules();
  auto it = rules.find(request.GetDescriptor());
  if (it == rules.end()) {  // CheckEveryMethodHasARule makes this unreachable
    return absl::PermissionDeniedError(
        absl::StrCat("no access rule for ", request.GetDescriptor()->full_name()));
  }
  const Rule& rule = it->second;
  if (rule.names != nullptr) {
    Names names;
    rule.names(request, names);
    for (absl::string_view name : names) {
      if (!who.Allows(rule.access, name)) {
        return absl::PermissionDeniedError(absl::StrCat(
            "principal '", who.name, "' has no ", security::AccessName(rule.access), " access to '",
            name.substr(0, 200), "' (", request.GetDescriptor()->name(), ")"));
      }
    }
  }
  if (rule.session_field != nullptr) {
    *session = request.GetReflection()->GetUInt64(request, rule.session_field);
  }
  return absl::OkStatus();
}

void CheckEveryMethodHasARule() {
  const Rules& rules = AllRules();
  const auto* file = v1::Operation::descriptor()->file()->pool();
  for (const char* service :
       {"baton.v1.Sessions", "baton.v1.Locks", "baton.v1.Semaphores", "baton.v1.Events",
        "baton.v1.Queues", "baton.v1.Futures", "baton.v1.Barriers", "baton.v1.Conditions",
        "baton.v1.Timers", "baton.v1.Tasks", "baton.v1.Admin", "baton.v1.Stream"}) {
    const auto* s = file->FindServiceByName(service);
    if (s == nullptr) {
      std::fprintf(stderr, "baton: no service %s\n", service);
      std::abort();
    }
    for (int i = 0; i < s->method_count(); ++i) {
      if (!rules.contains(s->method(i)->input_type())) {
        std::fprintf(stderr, "baton: %s has no access rule (service/rpc/access.cc)\n",
                     s->method(i)->full_name().c_str());
        std::abort();
      }
    }
  }
}

}  // namespace baton::rpc
