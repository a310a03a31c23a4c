// QueueClient for Baton's baton.v1.Queues. Producers Put one item per call
// (--batch N: N items per Put). Consumers open a session (Sessions/Open),
// then Get up to --batch items owned by that session, waiting at most
// kGetTimeout; the receipts of the items acknowledged meanwhile ride on the
// next Get (GetRequest.ack), so a consumer makes one call per batch: an item
// whose consumer goes away before its ack went out goes back to the head of
// the queue. Every call declares the same options: FIFO, maxsize 0 (the
// server's limit).
// In stream mode a consumer instead reads a Queues/Consume stream (prefetch
// kPrefetch) and acknowledges every kAckBatch items in one Ack.
#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "baton/v1/queue.grpc.pb.h"
#include "baton/v1/session.grpc.pb.h"
#include "bench/lock_client.h"
#include "bench/queue_client.h"

namespace baton::bench {
namespace {

// Long enough to outlive any run; Close ends the session anyway.
constexpr int64_t kSessionTtlSeconds = 60;
constexpr int kPrefetch = 32;
constexpr int kAckBatch = 8;

void SetOptions(baton::v1::QueueOptions* options) {
  options->set_order(baton::v1::QUEUE_ORDER_FIFO);
  options->set_maxsize(0);
}

class BatonQueueClient : public QueueClient {
 public:
  BatonQueueClient(QueueRole role, int index, std::string addr,
                   std::chrono::milliseconds call_timeout, bool stream, int batch)
      : role_(role),
        index_(index),
        addr_(std::move(addr)),
        call_timeout_(call_timeout),
        stream_(stream && role == QueueRole::kConsumer) {
    put_.set_name(std::string(kQueueName));
    SetOptions(put_.mutable_options());
    put_.add_items();
    get_.set_name(std::string(kQueueName));
    get_.set_max_items(batch);
    get_.mutable_timeout()->set_seconds(kGetTimeout.count());
    SetOptions(get_.mutable_options());
  }

  absl::Status Open(std::chrono::milliseconds connect_timeout) override {
    std::shared_ptr<grpc::Channel> channel = NewClientChannel(addr_, index_);
    if (absl::Status status = WaitForConnected(*channel, connect_timeout); !status.ok()) {
      return absl::Status(status.code(), absl::StrCat(addr_, ": ", status.message()));
    }
    sessions_ = baton::v1::Sessions::NewStub(channel);
    queues_ = baton::v1::Queues::NewStub(channel);
    if (role_ == QueueRole::kProducer) return absl::OkStatus();

    baton::v1::OpenSessionRequest request;
    request.mutable_ttl()->set_seconds(kSessionTtlSeconds);
    request.set_label(absl::StrCat("baton-bench/consumer/", index_));
    baton::v1::OpenSessionResponse response;
    grpc::ClientContext context;
    SetDeadline(context, call_timeout_);
    absl::Status status = FromGrpc(sessions_->Open(&context, request, &response), "Sessions/Open");
    if (status.ok()) {
      session_id_ = response.session_id();
      get_.set_session_id(session_id_);
    }
    return status;
  }

  // Stream mode: opens the Consume stream on first use (after Purge).
  absl::Status StartStream() {
    baton::v1::ConsumeRequest request;
    request.set_name(std::string(kQueueName));
    request.set_session_id(session_id_);
    request.set_prefetch(kPrefetch);
    SetOptions(request.mutable_options());
    stream_context_ = std::make_unique<grpc::ClientContext>();
    reader_ = queues_->Consume(stream_context_.get(), request);
    return absl::OkStatus();
  }

  absl::StatusOr<bool> StreamGet(std::string* data) {
    if (reader_ == nullptr) {
      if (absl::Status s = StartStream(); !s.ok()) return s;
    }
    while (buffered_.empty()) {
      baton::v1::ConsumeResponse msg;
      if (!reader_->Read(&msg)) {
        grpc::Status status = reader_->Finish();
        reader_.reset();
        return FromGrpc(
            status.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream ended") : status,
            "Queues/Consume");
      }
      for (auto& d : *msg.mutable_items()) buffered_.push_back(std::move(d));
    }
    return TakeBuffered(data);
  }

  bool TakeBuffered(std::string* data) {
    baton::v1::Delivery d = std::move(buffered_.front());
    buffered_.pop_front();
    last_receipt_ = d.receipt();
    *data = std::move(*d.mutable_data());
    return true;
  }

  absl::Status FlushAcks() {
    if (pending_acks_.empty()) return absl::OkStatus();
    baton::v1::AckRequest request;
    request.set_name(std::string(kQueueName));
    for (uint64_t r : pending_acks_) request.add_receipts(r);
    pending_acks_.clear();
    baton::v1::AckResponse response;
    grpc::ClientContext context;
    SetDeadline(context, call_timeout_);
    return FromGrpc(queues_->Ack(&context, request, &response), "Queues/Ack");
  }

  absl::Status Purge() override {
    baton::v1::PurgeRequest request;
    request.set_name(std::string(kQueueName));
    baton::v1::PurgeResponse response;
    grpc::ClientContext context;
    SetDeadline(context, call_timeout_);
    return FromGrpc(queues_->Purge(&context, request, &response), "Queues/Purge");
  }

  absl::Status Put(absl::string_view data) override {
    put_.mutable_items(0)->set_data(std::string(data));
    baton::v1::PutResponse response;
    grpc::ClientContext context;
    SetDeadline(context, call_timeout_);
    return FromGrpc(queues_->Put(&context, put_, &response), "Queues/Put");
  }

  absl::Status PutMany(const std::vector<std::string>& items) override {
    baton::v1::PutRequest request;
    request.set_name(std::string(kQueueName));
    SetOptions(request.mutable_options());
    for (const std::string& item : items) request.add_items()->set_data(item);
    baton::v1::PutResponse response;
    grpc::ClientContext context;
    SetDeadline(context, call_timeout_);
    return FromGrpc(queues_->Put(&context, request, &response), "Queues/Put");
  }

  // Hands out the items of the last Get one by one; when none is left, gets
  // up to --batch more with the acknowledgements of the previous ones riding
  // on the request (GetRequest.ack).
  absl::StatusOr<bool> Get(std::string* data) override {
    if (stream_) return StreamGet(data);
    if (!buffered_.empty()) return TakeBuffered(data);
    get_.clear_ack();
    for (uint64_t r : pending_acks_) get_.add_ack(r);
    const size_t acks = pending_acks_.size();
    pending_acks_.clear();
    baton::v1::GetResponse response;
    grpc::ClientContext context;
    // The server waits kGetTimeout at most; the deadline leaves it
    // call_timeout on top to answer.
    const auto deadline = std::chrono::system_clock::now() + kGetTimeout + call_timeout_;
    context.set_deadline(deadline);
    const grpc::Status status = queues_->Get(&context, get_, &response);
    if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED &&
        std::chrono::system_clock::now() < deadline) {
      return false;  // The server's wait ran out (the acks were applied).
    }
    if (absl::Status s = FromGrpc(status, "Queues/Get"); !s.ok()) return s;
    if (response.acked() != acks) {
      return absl::FailedPreconditionError(
          absl::StrCat("Queues/Get: acked ", response.acked(), " of ", acks));
    }
    if (response.items_size() < 1 || response.items_size() > static_cast<int>(get_.max_items())) {
      return absl::DataLossError(absl::StrCat("Queues/Get: want 1 to ", get_.max_items(),
                                              " items, got ", response.items_size()));
    }
    for (auto& d : *response.mutable_items()) buffered_.push_back(std::move(d));
    return TakeBuffered(data);
  }

  absl::Status Ack() override {
    pending_acks_.push_back(last_receipt_);
    if (stream_ && pending_acks_.size() >= static_cast<size_t>(kAckBatch)) return FlushAcks();
    return absl::OkStatus();  // Rides on the next Get, or goes with Close.
  }

  void Close() override {
    (void)FlushAcks();
    if (stream_) {
      if (reader_ != nullptr) {
        stream_context_->TryCancel();
        (void)reader_->Finish();
        reader_.reset();
      }
    }
    if (session_id_ == 0) return;
    baton::v1::CloseSessionRequest request;
    request.set_session_id(session_id_);
    baton::v1::CloseSessionResponse response;
    grpc::ClientContext context;
    SetDeadline(context, call_timeout_);
    // Best effort: the session expires after its TTL if this fails.
    (void)sessions_->Close(&context, request, &response);
    session_id_ = 0;
  }

 private:
  const QueueRole role_;
  const int index_;
  const std::string addr_;
  const std::chrono::milliseconds call_timeout_;
  const bool stream_;
  std::unique_ptr<grpc::ClientContext> stream_context_;
  std::unique_ptr<grpc::ClientReader<baton::v1::ConsumeResponse>> reader_;
  std::deque<baton::v1::Delivery> buffered_;
  std::vector<uint64_t> pending_acks_;
  uint64_t last_receipt_ = 0;
  std::unique_ptr<baton::v1::Sessions::Stub> sessions_;
  std::unique_ptr<baton::v1::Queues::Stub> queues_;
  uint64_t session_id_ = 0;
  // Reused across calls to keep allocation out of the loop.
  baton::v1::PutRequest put_;
  baton::v1::GetRequest get_;
};

}  // namespace

std::unique_ptr<QueueClient> NewBatonQueueClient(QueueRole role, int index, const std::string& addr,
                                                 std::chrono::milliseconds call_timeout,
                                                 bool stream, int batch) {
  return std::make_unique<BatonQueueClient>(role, index, addr, call_timeout, stream, batch);
}

}  // namespace baton::bench
