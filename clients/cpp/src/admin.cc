#include "baton/admin.h"

#include "core.h"
#include "proto_time.h"
#include "unary_op.h"

namespace baton {

using internal::CallOptions;
using internal::Core;

namespace {

ResourceKind FromProto(v1::ResourceKind kind) {
  switch (kind) {
    case v1::RESOURCE_KIND_LOCK:
      return ResourceKind::kLock;
    case v1::RESOURCE_KIND_SEMAPHORE:
      return ResourceKind::kSemaphore;
    case v1::RESOURCE_KIND_EVENT:
      return ResourceKind::kEvent;
    case v1::RESOURCE_KIND_QUEUE:
      return ResourceKind::kQueue;
    case v1::RESOURCE_KIND_FUTURE:
      return ResourceKind::kFuture;
    case v1::RESOURCE_KIND_BARRIER:
      return ResourceKind::kBarrier;
    case v1::RESOURCE_KIND_TIMER:
      return ResourceKind::kTimer;
    case v1::RESOURCE_KIND_TASKS:
      return ResourceKind::kTasks;
    default:
      return ResourceKind::kUnspecified;
  }
}

v1::ResourceKind ToProto(ResourceKind kind) {
  switch (kind) {
    case ResourceKind::kLock:
      return v1::RESOURCE_KIND_LOCK;
    case ResourceKind::kSemaphore:
      return v1::RESOURCE_KIND_SEMAPHORE;
    case ResourceKind::kEvent:
      return v1::RESOURCE_KIND_EVENT;
    case ResourceKind::kQueue:
      return v1::RESOURCE_KIND_QUEUE;
    case ResourceKind::kFuture:
      return v1::RESOURCE_KIND_FUTURE;
    case ResourceKind::kBarrier:
      return v1::RESOURCE_KIND_BARRIER;
    case ResourceKind::kTimer:
      return v1::RESOURCE_KIND_TIMER;
    case ResourceKind::kTasks:
      return v1::RESOURCE_KIND_TASKS;
    default:
      return v1::RESOURCE_KIND_UNSPECIFIED;
  }
}

ResourceInfo FromProto(const v1::DescribeResponse& r) {
  ResourceInfo info;
  info.name = r.name();
  info.kind = FromProto(r.kind());
  for (const v1::Holder& h : r.holders()) {
    HolderInfo holder;
    holder.token = h.token();
    holder.session_id = h.session_id();
    holder.count = h.count();
    holder.held_for = internal::FromProto(h.held_for());
    if (h.has_expires_in()) holder.expires_in = internal::FromProto(h.expires_in());
    holder.request_id = h.request_id();
    info.holders.push_back(std::move(holder));
  }
  info.waiters = r.waiters();
  info.capacity = r.capacity();
  info.available = r.available();
  info.event_set = r.event_state() == v1::EVENT_STATE_SET;
  info.last_token = r.last_token();
  info.proto = r;
  return info;
}

}  // namespace

absl::StatusOr<std::vector<ResourceSummary>> Admin::List(ListOptions options) const {
  std::vector<ResourceSummary> out;
  std::string page_token;
  do {
    v1::ListRequest request;
    if (options.kind.has_value()) request.set_kind(ToProto(*options.kind));
    request.set_prefix(options.prefix);
    request.set_page_size(1000);
    request.set_page_token(page_token);
    absl::StatusOr<v1::ListResponse> page =
        internal::Block<v1::ListResponse>([&](Callback<v1::ListResponse> done) {
          return internal::StartUnary<v1::ListResponse, v1::ListResponse>(
              core_, CallOptions{.retries = 3}, std::move(request),
              [](Core& core, auto... args) { core.admin().async()->List(args...); },
              BATON_ROUTE(list),
              internal::Converting<v1::ListResponse, v1::ListResponse>(
                  [](const v1::ListResponse& r) { return r; }),
              std::move(done));
        });
    if (!page.ok()) return page.status();
    for (const v1::ResourceSummary& s : page->resources()) {
      out.push_back(ResourceSummary{.name = s.name(),
                                    .kind = FromProto(s.kind()),
                                    .holders = s.holders(),
                                    .waiters = s.waiters()});
    }
    page_token = page->next_page_token();
  } while (!page_token.empty());
  return out;
}

absl::StatusOr<ResourceInfo> Admin::Describe(const std::string& name) const {
  return internal::Block<ResourceInfo>(
      [&](Callback<ResourceInfo> done) { return AsyncDescribe(name, std::move(done)); });
}

Call Admin::AsyncDescribe(const std::string& name, Callback<ResourceInfo> done) const {
  v1::DescribeRequest request;
  request.set_name(name);
  return internal::StartUnary<ResourceInfo, v1::DescribeResponse>(
      core_, CallOptions{.retries = 3}, std::move(request),
      [](Core& core, auto... args) { core.admin().async()->Describe(args...); },
      BATON_ROUTE(describe),
      internal::Converting<ResourceInfo, v1::DescribeResponse>(
          [](const v1::DescribeResponse& r) { return FromProto(r); }),
      std::move(done));
}

}  // namespace baton
