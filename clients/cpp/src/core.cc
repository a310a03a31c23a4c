#include "core.h"

#include <grpcpp/support/client_interceptor.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "baton/status.h"
#include "callback_scope.h"
#include "proto_time.h"

namespace baton::internal {

namespace {

// The deleter of every Core: see callback_scope.h for why the last handle
// dropped inside a callback (or on the stream's or a keeper's thread) is
// destroyed on a thread of its own.
void DestroyCore(Core* core) {
  if (!CallbackScope::Active()) {
    delete core;
    return;
  }
  std::thread([core] { delete core; }).detach();
}

std::string RandomPrefix() {
  std::random_device device;
  uint64_t bits = (uint64_t{device()} << 32) ^ device();
  return absl::StrCat("cpp-", absl::Hex(bits, absl::kZeroPad16), "-");
}

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  if (in) text << in.rdbuf();
  if (!in || text.str().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read the TLS ", what, " ", path));
  }
  return text.str();
}

// Credentials for `tls`, and the server-name override into `args`.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> TlsCredentials(
    const ClientTls& tls, grpc::ChannelArguments& args) {
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "ClientTls: cert_file and key_file go together (mutual TLS): give both or neither");
  }
  grpc::SslCredentialsOptions ssl;
  if (!tls.ca_file.empty()) {
    auto ca = ReadPem(tls.ca_file, "CA file");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
  }
  if (!tls.cert_file.empty()) {
    auto cert = ReadPem(tls.cert_file, "certificate");
    if (!cert.ok()) return cert.status();
    auto key = ReadPem(tls.key_file, "key");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *cert;
    ssl.pem_private_key = *key;
  }
  if (!tls.server_name.empty()) args.SetSslTargetNameOverride(tls.server_name);
  return grpc::SslCredentials(ssl);
}

// Adds `authorization: Bearer <token>` to every call of the channel.
class BearerToken final : public grpc::experimental::Interceptor {
 public:
  explicit BearerToken(const std::string* header) : header_(header) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({"authorization", *header_});
    }
    methods->Proceed();
  }

 private:
  const std::string* header_;  // owned by the factory, which outlives the channel's calls
};

class BearerTokenFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit BearerTokenFactory(const std::string& token) : header_("Bearer " + token) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new BearerToken(&header_);
  }

 private:
  const std::string header_;
};

absl::Status CheckToken(const std::string& token) {
  for (char c : token) {
    if (c <= ' ' || c > '~') {
      return absl::InvalidArgumentError(
          "the token must be printable ASCII without spaces (is it a file's contents with a "
          "newline?)");
    }
  }
  return absl::OkStatus();
}

// Whether gRPC target `target` is this machine: 127.0.0.0/8, ::1,
// localhost, a unix socket.
bool IsLoopbackTarget(std::string target) {
  for (const char* scheme : {"dns:///", "dns:", "ipv4:", "ipv6:"}) {
    if (target.rfind(scheme, 0) == 0) {
      target = target.substr(std::strlen(scheme));
      break;
    }
  }
  if (target.rfind("unix:", 0) == 0 || target.rfind("unix-abstract:", 0) == 0) return true;
  std::string host = target;
  if (!host.empty() && host[0] == '[') {
    host = host.substr(
        1, host.find(']') == std::string::npos ? std::string::npos : host.find(']') - 1);
  } else if (size_t colon = host.rfind(':');
             colon != std::string::npos && host.find(':') == colon) {
    host = host.substr(0, colon);
  }
  std::transform(host.begin(), host.end(), host.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace

Core::Core(std::shared_ptr<grpc::Channel> channel, ClientOptions options)
    : options_(std::move(options)),
      request_id_prefix_(RandomPrefix()),
      channel_(std::move(channel)),
      sessions_(v1::Sessions::NewStub(channel_)),
      locks_(v1::Locks::NewStub(channel_)),
      semaphores_(v1::Semaphores::NewStub(channel_)),
      events_(v1::Events::NewStub(channel_)),
      conditions_(v1::Conditions::NewStub(channel_)),
      barriers_(v1::Barriers::NewStub(channel_)),
      queues_(v1::Queues::NewStub(channel_)),
      futures_(v1::Futures::NewStub(channel_)),
      tasks_(v1::Tasks::NewStub(channel_)),
      timers_(v1::Timers::NewStub(channel_)),
      admin_(v1::Admin::NewStub(channel_)) {}

absl::StatusOr<std::shared_ptr<Core>> Core::Connect(const std::string& target,
                                                    ClientOptions options) {
  grpc::ChannelArguments args;
  // A connection of its own, as a separate process would have: sessions of
  // two clients in one process do not share a connection's fate.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // Notice a dead connection (clients/README.md: every 20 s, timeout 10 s,
  // also without calls).
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Reconnect quickly: the session TTL is the grace period, often seconds,
  // while gRPC's default backoff grows to two minutes.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1'000);
  std::shared_ptr<grpc::ChannelCredentials> credentials = options.credentials;
  if (!credentials && options.tls) {
    auto tls = TlsCredentials(*options.tls, args);
    if (!tls.ok()) return tls.status();
    credentials = *tls;
  }
  bool plaintext = !credentials;
  if (!credentials) credentials = grpc::InsecureChannelCredentials();
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  if (!options.token.empty()) {
    if (auto s = CheckToken(options.token); !s.ok()) return s;
    if (plaintext && !options.insecure_token && !IsLoopbackTarget(target)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "refusing to send the token in clear to ", target,
          ": use tls, or set insecure_token for a server started with --allow_plaintext"));
    }
    interceptors.push_back(std::make_unique<BearerTokenFactory>(options.token));
  }
  std::shared_ptr<Core> core(new Core(grpc::experimental::CreateCustomChannelWithInterceptors(
                                          target, credentials, args, std::move(interceptors)),
                                      std::move(options)),
                             DestroyCore);
  if (core->options_.transport == Transport::kStream) {
    // The first stream's hello opens the session.
    Core* raw = core.get();
    core->stream_ = std::make_unique<SessionStream>(
        core->channel_, SessionStream::Options{.ttl = core->options_.session_ttl,
                                               .label = core->options_.label,
                                               .rpc_timeout = core->options_.rpc_timeout,
                                               .on_lost = [raw](uint64_t id, absl::Status why) {
                                                 raw->OnLost(id, std::move(why));
                                               }});
    absl::Status started = core->stream_->Start(core->options_.connect_timeout);
    if (!started.ok()) {
      return absl::Status(started.code(),
                          absl::StrCat("connecting to ", target, ": ", started.message()));
    }
    return core;
  }
  absl::StatusOr<uint64_t> id = core->OpenSession(core->options_.connect_timeout);
  if (!id.ok()) {
    return absl::Status(id.status().code(),
                        absl::StrCat("connecting to ", target, ": ", id.status().message()));
  }
  std::lock_guard<std::mutex> lock(core->mu_);
  core->StartKeeper(*id);
  return core;
}

Core::~Core() {
  (void)Close();
  std::vector<std::unique_ptr<SessionKeeper>> retired;
  {
    std::lock_guard<std::mutex> lock(mu_);
    retired.swap(retired_);
  }
  // Joined outside mu_: a retiring keeper thread may still be in OnLost.
  retired.clear();
}

absl::Time Core::WaitDeadline(absl::Time wait_deadline) const {
  if (wait_deadline == absl::InfiniteFuture()) return absl::InfiniteFuture();
  return wait_deadline + options_.rpc_timeout;
}

absl::StatusOr<uint64_t> Core::OpenSession(absl::Duration wait) {
  grpc::ClientContext context;
  context.set_wait_for_ready(true);
  context.set_deadline(ToChrono(absl::Now() + wait));
  v1::OpenSessionRequest request;
  *request.mutable_ttl() = ToProto(options_.session_ttl);
  request.set_label(options_.label);
  v1::OpenSessionResponse response;
  absl::Status status = FromGrpcStatus(sessions_->Open(&context, request, &response));
  if (!status.ok()) return status;
  return response.session_id();
}

void Core::StartKeeper(uint64_t session_id) {
  keeper_ = std::make_unique<SessionKeeper>(
      sessions_.get(), session_id, options_.session_ttl,
      [this](uint64_t id, absl::Status why) { OnLost(id, std::move(why)); });
}

void Core::OnLost(uint64_t session_id, absl::Status why) {
  std::vector<std::function<void(absl::Status)>> callbacks;
  std::vector<std::weak_ptr<LostSignal>> signals;
  {
    std::lock_guard<std::mutex> lock(mu_);
    callbacks = lost_callbacks_;
    auto it = lost_signals_.find(session_id);
    if (it != lost_signals_.end()) {
      signals = std::move(it->second);
      lost_signals_.erase(it);
    }
  }
  // The holdings first: a session-lost callback may look at them.
  for (auto& weak : signals) {
    if (auto signal = weak.lock()) signal->Fire(why);
  }
  if (options_.on_session_lost) options_.on_session_lost(why);
  for (auto& callback : callbacks) callback(why);
  // A new session for the operations that follow (on the stream, the next
  // stream opens it). If that fails, calls fail ABORTED until RenewSession.
  if (!stream_) (void)RenewSession();
}

std::shared_ptr<LostSignal> Core::NewLostSignal(uint64_t session_id) {
  auto signal = std::make_shared<LostSignal>();
  if (session_id == 0) return signal;
  bool over = SessionOver(session_id);
  if (!over) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& list = lost_signals_[session_id];
    std::erase_if(list, [](const std::weak_ptr<LostSignal>& w) { return w.expired(); });
    list.push_back(signal);
    return signal;
  }
  signal->Fire(absl::AbortedError(absl::StrCat("session ", session_id, " is over")));
  return signal;
}

absl::StatusOr<uint64_t> Core::SessionForCall() const {
  if (stream_) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_)
        return absl::FailedPreconditionError("the client is closed: its session has ended");
    }
    uint64_t id = stream_->session_id();
    if (id != 0) return id;
    // A new session is being opened after a loss. Waiting for it here would
    // block the thread that must read its welcome.
    if (!OnStreamCallbackThread()) id = stream_->WaitForSession(options_.connect_timeout);
    if (id != 0) return id;
    return absl::UnavailableError("the session was lost and a new one is not open yet");
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_ || !keeper_) {
    return absl::FailedPreconditionError("the client is closed: its session has ended");
  }
  absl::Status status = keeper_->status();
  if (!status.ok()) return status;
  return keeper_->session_id();
}

uint64_t Core::session_id() const {
  if (stream_) return stream_->session_id();
  std::lock_guard<std::mutex> lock(mu_);
  return keeper_ ? keeper_->session_id() : 0;
}

absl::Status Core::session_status() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return absl::FailedPreconditionError("the client is closed");
  if (stream_) {
    if (stream_->session_id() != 0) return absl::OkStatus();
    return absl::AbortedError("the session was lost; a new one is being opened");
  }
  if (!keeper_) return absl::FailedPreconditionError("the client is closed");
  return keeper_->status();
}

bool Core::SessionOver(uint64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return true;
  if (stream_) return stream_->session_id() != id;
  if (!keeper_) return true;
  return keeper_->session_id() != id || keeper_->lost();
}

int Core::keepalive_streams_opened() const {
  if (stream_) return stream_->streams_opened();
  std::lock_guard<std::mutex> lock(mu_);
  return keeper_ ? keeper_->streams_opened() : 0;
}

void Core::AddLostCallback(std::function<void(absl::Status)> callback) {
  absl::Status status;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (keeper_) status = keeper_->status();
    lost_callbacks_.push_back(callback);
  }
  if (stream_) status = absl::OkStatus();  // a loss is told as it happens
  // Registered after the loss: tell it at once.
  if (!status.ok()) callback(status);
}

absl::Status Core::RenewSession() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return absl::FailedPreconditionError("the client is closed");
    if (stream_) return absl::OkStatus();  // the stream opens a new session itself
    if (keeper_ && !keeper_->lost()) return absl::OkStatus();
  }
  absl::StatusOr<uint64_t> id = OpenSession(options_.rpc_timeout);
  if (!id.ok()) return id.status();
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return absl::FailedPreconditionError("the client is closed");
  if (keeper_ && !keeper_->lost()) return absl::OkStatus();  // renewed meanwhile
  if (keeper_) retired_.push_back(std::move(keeper_));
  StartKeeper(*id);
  return absl::OkStatus();
}

absl::Status Core::Close() {
  std::unique_ptr<SessionKeeper> keeper;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return absl::OkStatus();
    closed_ = true;
    keeper = std::move(keeper_);
  }
  if (stream_) {
    uint64_t id = stream_->session_id();
    stream_->Stop();
    if (id == 0) return absl::OkStatus();  // lost: nothing left to close
    grpc::ClientContext context;
    context.set_deadline(ToChrono(RpcDeadline()));
    v1::CloseSessionRequest request;
    request.set_session_id(id);
    v1::CloseSessionResponse response;
    absl::Status status = FromGrpcStatus(sessions_->Close(&context, request, &response));
    // Already gone (closed elsewhere, not yet noticed) is closed.
    return status.code() == absl::StatusCode::kNotFound ? absl::OkStatus() : status;
  }
  if (!keeper) return absl::OkStatus();
  keeper->Stop();
  if (keeper->lost()) return absl::OkStatus();  // nothing left to close
  grpc::ClientContext context;
  context.set_deadline(ToChrono(RpcDeadline()));
  v1::CloseSessionRequest request;
  request.set_session_id(keeper->session_id());
  v1::CloseSessionResponse response;
  return FromGrpcStatus(sessions_->Close(&context, request, &response));
}

}  // namespace baton::internal

namespace baton::internal {

std::string Core::NewRequestId() { return absl::StrCat(request_id_prefix_, ++request_ids_); }

}  // namespace baton::internal
