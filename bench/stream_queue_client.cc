// QueueClient over the session stream (baton.v1.Stream/Connect): a put and a
// get are one operation each, exactly the unary Queues/Put and Queues/Get
// requests, answered one at a time, so that put-to-get latency stays per
// item (--batch N: N items per put, up to N per get). The acknowledgements
// of the items got ride on the next get (GetRequest.ack): one operation per
// batch for a consumer. Every request declares the unary client's options
// (FIFO, maxsize 0); gets and acks act for the stream's session.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

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
                    std::chrono::system_clock::time_point stream_deadline, OpChannel* shared,
                    int batch)
      : role_(role),
        index_(index),
        addr_(std::move(addr)),
        stream_deadline_(stream_deadline),
        channel_(shared) {
    baton::v1::PutRequest* put = put_.mutable_put();
    put->set_name(std::string(kQueueName));
    SetOptions(put->mutable_options());
    put->add_items();
    baton::v1::GetRequest* get = get_.mutable_get();
    get->set_name(std::string(kQueueName));
    get->set_max_items(batch);
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

  absl::Status PutMany(const std::vector<std::string>& items) override {
    baton::v1::Operation op;
    baton::v1::PutRequest* put = op.mutable_put();
    put->set_name(std::string(kQueueName));
    SetOptions(put->mutable_options());
    for (const std::string& item : items) put->add_items()->set_data(item);
    if (absl::Status s = channel_->Exchange(&op, 1, &results_[0]); !s.ok()) return s;
    return ResultStatus(results_[0], "put");
  }

  // Hands out the items of the last get one by one; when none is left, gets
  // up to --batch more, the acknowledgements of the previous ones riding on
  // the same operation.
  absl::StatusOr<bool> Get(std::string* data) override {
    if (next_ < items_.size()) return TakeNext(data);
    baton::v1::GetRequest* get = get_.mutable_get();
    get->clear_ack();
    for (uint64_t r : pending_acks_) get->add_ack(r);
    const size_t acks = pending_acks_.size();
    pending_acks_.clear();
    if (absl::Status s = channel_->Exchange(&get_, 1, &results_[1]); !s.ok()) return s;
    baton::v1::OperationResult& got = results_[1];
    if (got.code() == static_cast<int>(absl::StatusCode::kDeadlineExceeded)) {
      return false;  // The server's wait ran out (the acks were applied).
    }
    if (absl::Status s = ResultStatus(got, "get"); !s.ok()) return s;
    if (!got.has_get() || got.get().acked() != acks) {
      return absl::FailedPreconditionError(absl::StrCat(
          "get: acked ", got.has_get() ? got.get().acked() : 0, " of ", acks, " riding on it"));
    }
    if (got.get().items_size() < 1 || got.get().items_size() > static_cast<int>(get->max_items())) {
      return absl::DataLossError(absl::StrCat("get: want 1 to ", get->max_items(), " items, got ",
                                              got.get().items_size()));
    }
    items_.clear();
    next_ = 0;
    for (auto& d : *got.mutable_get()->mutable_items()) items_.push_back(std::move(d));
    return TakeNext(data);
  }

  absl::Status Ack() override {
    pending_acks_.push_back(last_receipt_);  // Sent with the next Get, or by Close.
    return absl::OkStatus();
  }

  void Close() override {
    if (!pending_acks_.empty() && channel_ != nullptr) {
      baton::v1::Operation op;
      op.mutable_ack()->set_name(std::string(kQueueName));
      for (uint64_t r : pending_acks_) op.mutable_ack()->add_receipts(r);
      const size_t acks = pending_acks_.size();
      pending_acks_.clear();
      // Best effort, as the unary client's Close: the session's end would
      // put the items back.
      if (channel_->Exchange(&op, 1, &results_[0]).ok()) (void)CheckAck(results_[0], acks);
    }
    if (next_ < items_.size() && channel_ != nullptr) {
      // Got but never handed out (the stop marker came first): back to the
      // head of the queue for another consumer, at once rather than when the
      // session ends.
      baton::v1::Operation op;
      op.mutable_nack()->set_name(std::string(kQueueName));
      for (size_t i = next_; i < items_.size(); ++i) {
        op.mutable_nack()->add_receipts(items_[i].receipt());
      }
      next_ = items_.size();
      (void)channel_->Exchange(&op, 1, &results_[0]);
    }
    if (own_ != nullptr) (void)own_->Close();
    own_.reset();
    channel_ = nullptr;
  }

 private:
  static absl::Status CheckAck(const baton::v1::OperationResult& result, size_t acks) {
    if (absl::Status s = ResultStatus(result, "ack"); !s.ok()) return s;
    if (!result.has_ack() || result.ack().acked() != acks) {
      return absl::FailedPreconditionError(
          absl::StrCat("ack: acked ", result.has_ack() ? result.ack().acked() : 0, " of ", acks));
    }
    return absl::OkStatus();
  }

  bool TakeNext(std::string* data) {
    baton::v1::Delivery& d = items_[next_++];
    last_receipt_ = d.receipt();
    *data = std::move(*d.mutable_data());
    return true;
  }

  const QueueRole role_;
  const int index_;
  const std::string addr_;
  const std::chrono::system_clock::time_point stream_deadline_;
  // The stream in use: shared, or own_.
  OpChannel* channel_;
  std::unique_ptr<SingleUserStream> own_;
  // Items of the last get not handed out yet (from next_ on).
  std::vector<baton::v1::Delivery> items_;
  size_t next_ = 0;
  uint64_t last_receipt_ = 0;
  std::vector<uint64_t> pending_acks_;
  // Reused across calls to keep allocation out of the loop.
  baton::v1::Operation put_;
  baton::v1::Operation get_;
  baton::v1::OperationResult results_[2];
};

}  // namespace

std::unique_ptr<QueueClient> NewStreamQueueClient(
    QueueRole role, int index, const std::string& addr,
    std::chrono::system_clock::time_point stream_deadline, OpChannel* shared, int batch) {
  return std::make_unique<StreamQueueClient>(role, index, addr, stream_deadline, shared, batch);
}

}  // namespace baton::bench
