// QueueClient over the session stream (baton.v1.Stream/Connect): a put and a
// get are one operation each, exactly the unary Queues/Put and Queues/Get
// requests, answered one at a time, so that put-to-get latency stays per
// item. An Ack waits for the next Get and travels in the same message
// (`ops: [ack, get]`): one round trip per item for a consumer instead of
// two. Every request declares the unary client's options (FIFO, maxsize 0);
// gets and acks act for the stream's session.
#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "bench/lock_client.h"
#include "bench/queue_client.h"
#include "bench/session_stream.h"

namespace baton::bench {
namespace {

// Long enough to outlive any run; the stream's end starts it anyway.
constexpr std::chrono::seconds kSessionTtl(60);

void SetOptions(baton::v1::QueueOptions* options) {
  options->set_order(baton::v1::QUEUE_ORDER_FIFO);
  options->set_maxsize(0);
}

class StreamQueueClient : public QueueClient {
 public:
  StreamQueueClient(QueueRole role, int index, std::string addr,
                    std::chrono::system_clock::time_point stream_deadline, OpChannel* shared)
      : role_(role),
        index_(index),
        addr_(std::move(addr)),
        stream_deadline_(stream_deadline),
        channel_(shared) {
    baton::v1::PutRequest* put = put_.mutable_put();
    put->set_name(std::string(kQueueName));
    SetOptions(put->mutable_options());
    put->add_items();
    baton::v1::AckRequest* ack = ack_get_[0].mutable_ack();
    ack->set_name(std::string(kQueueName));
    ack->add_receipts(0);
    baton::v1::GetRequest* get = ack_get_[1].mutable_get();
    get->set_name(std::string(kQueueName));
    get->set_max_items(1);
    get->mutable_timeout()->set_seconds(kGetTimeout.count());
    SetOptions(get->mutable_options());
  }

  absl::Status Open(std::chrono::milliseconds connect_timeout) override {
    if (channel_ != nullptr) return absl::OkStatus();
    std::shared_ptr<grpc::Channel> channel = NewClientChannel(addr_, index_);
    if (absl::Status status = WaitForConnected(*channel, connect_timeout); !status.ok()) {
      return absl::Status(status.code(), absl::StrCat(addr_, ": ", status.message()));
    }
    auto stream = SingleUserStream::Open(
        channel,
        absl::StrCat("baton-bench/", role_ == QueueRole::kProducer ? "producer/" : "consumer/",
                     index_),
        kSessionTtl, stream_deadline_);
    if (!stream.ok()) return stream.status();
    own_ = *std::move(stream);
    channel_ = own_.get();
    return absl::OkStatus();
  }

  absl::Status Purge() override {
    baton::v1::Operation op;
    op.mutable_purge()->set_name(std::string(kQueueName));
    baton::v1::OperationResult result;
    if (absl::Status s = channel_->Exchange(&op, 1, &result); !s.ok()) return s;
    return ResultStatus(result, "purge");
  }

  absl::Status Put(absl::string_view data) override {
    put_.mutable_put()->mutable_items(0)->set_data(std::string(data));
    if (absl::Status s = channel_->Exchange(&put_, 1, &results_[0]); !s.ok()) return s;
    return ResultStatus(results_[0], "put");
  }

  absl::StatusOr<bool> Get(std::string* data) override {
    // With an ack pending: [ack, get]; otherwise [get].
    const int first = ack_pending_ ? 0 : 1;
    if (absl::Status s = channel_->Exchange(&ack_get_[first], 2 - first, &results_[first]);
        !s.ok()) {
      return s;
    }
    if (ack_pending_) {
      ack_pending_ = false;
      if (absl::Status s = CheckAck(results_[0]); !s.ok()) return s;
    }
    baton::v1::OperationResult& got = results_[1];
    if (got.code() == static_cast<int>(absl::StatusCode::kDeadlineExceeded)) {
      return false;  // The server's wait ran out: the queue stayed empty.
    }
    if (absl::Status s = ResultStatus(got, "get"); !s.ok()) return s;
    if (!got.has_get() || got.get().items_size() != 1) {
      return absl::DataLossError(
          absl::StrCat("get: want 1 item, got ", got.has_get() ? got.get().items_size() : 0));
    }
    baton::v1::Delivery& delivery = *got.mutable_get()->mutable_items(0);
    ack_get_[0].mutable_ack()->set_receipts(0, delivery.receipt());
    *data = std::move(*delivery.mutable_data());
    return true;
  }

  absl::Status Ack() override {
    ack_pending_ = true;  // Sent with the next Get, or by Close.
    return absl::OkStatus();
  }

  void Close() override {
    if (ack_pending_ && channel_ != nullptr) {
      ack_pending_ = false;
      // Best effort, as the unary client's Close: the session's end would
      // put the item back.
      if (channel_->Exchange(&ack_get_[0], 1, &results_[0]).ok()) (void)CheckAck(results_[0]);
    }
    if (own_ != nullptr) (void)own_->Close();
    own_.reset();
    channel_ = nullptr;
  }

 private:
  static absl::Status CheckAck(const baton::v1::OperationResult& result) {
    if (absl::Status s = ResultStatus(result, "ack"); !s.ok()) return s;
    if (!result.has_ack() || result.ack().acked() != 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("ack: acked ", result.has_ack() ? result.ack().acked() : 0, " of 1"));
    }
    return absl::OkStatus();
  }

  const QueueRole role_;
  const int index_;
  const std::string addr_;
  const std::chrono::system_clock::time_point stream_deadline_;
  // The stream in use: shared, or own_.
  OpChannel* channel_;
  std::unique_ptr<SingleUserStream> own_;
  bool ack_pending_ = false;
  // Reused across calls to keep allocation out of the loop.
  baton::v1::Operation put_;
  baton::v1::Operation ack_get_[2];
  baton::v1::OperationResult results_[2];
};

}  // namespace

std::unique_ptr<QueueClient> NewStreamQueueClient(
    QueueRole role, int index, const std::string& addr,
    std::chrono::system_clock::time_point stream_deadline, OpChannel* shared) {
  return std::make_unique<StreamQueueClient>(role, index, addr, stream_deadline, shared);
}

}  // namespace baton::bench
