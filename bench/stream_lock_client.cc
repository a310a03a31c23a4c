// LockClient over a session stream of its own: the stream's hello opens the
// session (no Sessions/Open), then acquire_lock and release_lock operations,
// the unary Locks/Acquire and Locks/Release requests, act for it; each is
// answered before the next is sent. Checks fencing as it goes: every grant's
// token must exceed the one before it.
#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "bench/lock_client.h"
#include "bench/session_stream.h"

namespace baton::bench {
namespace {

// Long enough to outlive any run; the stream's end starts it anyway.
constexpr std::chrono::seconds kSessionTtl(60);

class StreamLockClient : public LockClient {
 public:
  StreamLockClient(int index, std::shared_ptr<grpc::Channel> channel,
                   std::chrono::milliseconds call_timeout,
                   std::chrono::system_clock::time_point stream_deadline)
      : index_(index), channel_(std::move(channel)), stream_deadline_(stream_deadline) {
    // The unary client's deadline becomes the wait's own timeout.
    SetDuration(call_timeout, acquire_.mutable_acquire_lock()->mutable_timeout());
  }

  absl::Status Open() override {
    auto stream = SingleUserStream::Open(channel_, absl::StrCat("baton-bench/", index_),
                                         kSessionTtl, stream_deadline_);
    if (!stream.ok()) return stream.status();
    stream_ = *std::move(stream);
    return absl::OkStatus();
  }

  absl::Status Acquire(const std::string& name) override {
    acquire_.mutable_acquire_lock()->set_name(name);
    if (absl::Status s = stream_->Exchange(&acquire_, 1, &result_); !s.ok()) return s;
    if (absl::Status s = ResultStatus(result_, "acquire_lock"); !s.ok()) return s;
    const uint64_t token = result_.acquire_lock().token();
    if (token <= last_token_) {
      return absl::InternalError(absl::StrCat("acquire_lock: fencing token ", token,
                                              " not above the previous grant's ", last_token_));
    }
    last_token_ = token;
    baton::v1::ReleaseLockRequest* release = release_.mutable_release_lock();
    release->set_name(name);
    release->set_token(token);
    return absl::OkStatus();
  }

  absl::Status Release() override {
    if (absl::Status s = stream_->Exchange(&release_, 1, &result_); !s.ok()) return s;
    return ResultStatus(result_, "release_lock");
  }

  void Close() override {
    // Half-close: the server ends the stream once nothing is pending.
    if (stream_ != nullptr) (void)stream_->Close();
    stream_.reset();
  }

 private:
  static void SetDuration(std::chrono::milliseconds d, google::protobuf::Duration* out) {
    out->set_seconds(d.count() / 1000);
    out->set_nanos(static_cast<int32_t>(d.count() % 1000) * 1000000);
  }

  const int index_;
  const std::shared_ptr<grpc::Channel> channel_;
  const std::chrono::system_clock::time_point stream_deadline_;
  std::unique_ptr<SingleUserStream> stream_;
  uint64_t last_token_ = 0;
  // Reused across cycles to keep allocation out of the loop.
  baton::v1::Operation acquire_;
  baton::v1::Operation release_;
  baton::v1::OperationResult result_;
};

}  // namespace

std::unique_ptr<LockClient> NewStreamLockClient(
    int index, std::shared_ptr<grpc::Channel> channel, std::chrono::milliseconds call_timeout,
    std::chrono::system_clock::time_point stream_deadline) {
  return std::make_unique<StreamLockClient>(index, std::move(channel), call_timeout,
                                            stream_deadline);
}

}  // namespace baton::bench
