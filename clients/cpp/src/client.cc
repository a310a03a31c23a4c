#include "baton/client.h"

#include <thread>

#include "acquire.h"
#include "baton/status.h"
#include "callback_scope.h"
#include "core.h"
#include "proto_time.h"

namespace baton {

absl::StatusOr<Client> Client::Connect(const std::string& target, ClientOptions options) {
  absl::StatusOr<std::shared_ptr<internal::Core>> core =
      internal::Core::Connect(target, std::move(options));
  if (!core.ok()) return core.status();
  return Client(std::move(*core));
}

namespace {

// Closes the session of a Client being destroyed or replaced. Inside a
// callback (internal/callback_scope.h) Close would wait for the very thread
// it runs on (the stream's reactor, its thread, a keeper): a thread of its
// own closes it then, and drops this handle after.
void CloseOnDestruction(std::shared_ptr<internal::Core> core) {
  if (!core) return;
  if (!internal::CallbackScope::Active()) {
    (void)core->Close();
    return;
  }
  std::thread([core = std::move(core)] { (void)core->Close(); }).detach();
}

}  // namespace

Client& Client::operator=(Client&& other) noexcept {
  if (this != &other) {
    CloseOnDestruction(std::move(core_));
    core_ = std::move(other.core_);
  }
  return *this;
}

Client::~Client() { CloseOnDestruction(std::move(core_)); }

baton::Lock Client::Lock(std::string name) const { return baton::Lock(core_, std::move(name)); }

baton::Semaphore Client::Semaphore(std::string name, int64_t capacity) const {
  return baton::Semaphore(core_, std::move(name), capacity);
}

baton::Event Client::Event(std::string name) const { return baton::Event(core_, std::move(name)); }

baton::Condition Client::Condition(std::string lock, std::string condition) const {
  return baton::Condition(core_, std::move(lock), std::move(condition));
}

baton::Barrier Client::Barrier(std::string name, uint32_t parties) const {
  return baton::Barrier(core_, std::move(name), parties);
}

baton::Queue Client::Queue(std::string name, std::optional<QueueConfig> config) const {
  return baton::Queue(core_, std::move(name), config);
}

baton::Future Client::Future(std::string name) const {
  return baton::Future(core_, std::move(name));
}

baton::Tasks Client::Tasks(std::string queue) const {
  return baton::Tasks(core_, std::move(queue));
}

baton::Timer Client::Timer(std::string name) const { return baton::Timer(core_, std::move(name)); }

baton::Admin Client::Admin() const { return baton::Admin(core_); }

uint64_t Client::session_id() const { return core_->session_id(); }

bool Client::session_lost() const {
  absl::Status status = core_->session_status();
  return !status.ok() && status.code() != absl::StatusCode::kFailedPrecondition;
}

absl::Status Client::session_status() const { return core_->session_status(); }

void Client::OnSessionLost(std::function<void(absl::Status)> callback) const {
  core_->AddLostCallback(std::move(callback));
}

absl::Status Client::RenewSession() const { return core_->RenewSession(); }

absl::StatusOr<SessionInfo> Client::DescribeSession() const {
  v1::DescribeSessionRequest request;
  request.set_session_id(core_->session_id());
  absl::StatusOr<v1::DescribeSessionResponse> described =
      internal::CallNow<v1::DescribeSessionResponse>(
          core_, request,
          [](internal::Core& core, auto... args) { core.sessions().async()->Describe(args...); },
          BATON_ROUTE(describe_session),
          [](internal::Core& c, auto... args) { return c.sessions().Describe(args...); });
  if (!described.ok()) return described.status();
  const v1::DescribeSessionResponse& response = *described;
  SessionInfo info;
  info.session_id = response.session_id();
  info.label = response.label();
  info.ttl = internal::FromProto(response.ttl());
  if (response.has_expires_in()) info.expires_in = internal::FromProto(response.expires_in());
  info.age = internal::FromProto(response.age());
  info.open_streams = response.open_streams();
  return info;
}

int Client::keepalive_streams_opened() const { return core_->keepalive_streams_opened(); }

absl::Status Client::Close() { return core_ ? core_->Close() : absl::OkStatus(); }

}  // namespace baton
