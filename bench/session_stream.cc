// SingleUserStream and SharedStream: the hello, exchanges of operations and
// answers, batching, and the end of a stream.
#include "bench/session_stream.h"

#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"

namespace baton::bench {
namespace {

using Stream = grpc::ClientReaderWriter<baton::v1::StreamRequest, baton::v1::StreamResponse>;

// Sends the hello of a new session and reads the welcome. On failure the
// stream has ended and its status is returned.
absl::StatusOr<uint64_t> Hello(Stream& stream, absl::string_view label, std::chrono::seconds ttl) {
  baton::v1::StreamRequest hello;
  hello.mutable_hello()->mutable_ttl()->set_seconds(ttl.count());
  hello.mutable_hello()->set_label(std::string(label));
  baton::v1::StreamResponse welcome;
  if (stream.Write(hello) && stream.Read(&welcome)) {
    if (!welcome.has_welcome() || welcome.welcome().session_id() == 0) {
      return absl::DataLossError("Stream/Connect: the first answer is no welcome");
    }
    return welcome.welcome().session_id();
  }
  grpc::Status status = stream.Finish();
  if (status.ok()) return absl::UnavailableError("Stream/Connect: ended before its welcome");
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat("Stream/Connect: ", status.error_message()));
}

absl::Status EndStatus(const grpc::Status& status) {
  if (status.ok()) return absl::UnavailableError("the session stream ended");
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat("the session stream ended: ", status.error_message()));
}

// An answer that the stream's end gives to operation `id`.
void FillEnded(uint64_t id, const absl::Status& end, baton::v1::OperationResult* result) {
  result->Clear();
  result->set_id(id);
  result->set_code(static_cast<int32_t>(end.code()));
  result->set_message(std::string(end.message()));
}

}  // namespace

absl::Status ResultStatus(const baton::v1::OperationResult& result, absl::string_view what) {
  if (result.code() == 0) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(result.code()),
                      absl::StrCat(what, ": ", result.message()));
}

// --- SingleUserStream ---

absl::StatusOr<std::unique_ptr<SingleUserStream>> SingleUserStream::Open(
    const std::shared_ptr<grpc::Channel>& channel, absl::string_view label,
    std::chrono::seconds ttl, std::chrono::system_clock::time_point deadline) {
  std::unique_ptr<SingleUserStream> s(new SingleUserStream());
  s->context_.set_deadline(deadline);
  s->stub_ = baton::v1::Stream::NewStub(channel);
  s->stream_ = s->stub_->Connect(&s->context_);
  absl::StatusOr<uint64_t> session = Hello(*s->stream_, label, ttl);
  if (!session.ok()) {
    s->ended_ = true;
    return session.status();
  }
  s->session_id_ = *session;
  return s;
}

SingleUserStream::~SingleUserStream() {
  if (ended_) return;
  context_.TryCancel();
  while (stream_->Read(&response_)) {
  }
  (void)stream_->Finish();
}

absl::Status SingleUserStream::Exchange(baton::v1::Operation* ops, int n,
                                        baton::v1::OperationResult* results) {
  const uint64_t first = next_id_;
  request_.Clear();
  for (int i = 0; i < n; ++i) {
    ops[i].set_id(next_id_++);
    *request_.add_ops() = ops[i];
    results[i].Clear();
  }
  absl::Status end;
  if (ended_) {
    end = absl::FailedPreconditionError("the session stream has ended");
  } else if (stream_->Write(request_)) {
    // Only this user's operations are pending, so every answer is one of
    // these.
    for (int answered = 0; answered < n;) {
      if (!stream_->Read(&response_)) break;
      for (baton::v1::OperationResult& r : *response_.mutable_results()) {
        const uint64_t i = r.id() - first;
        if (r.id() < first || i >= static_cast<uint64_t>(n) || results[i].id() != 0) continue;
        results[i].Swap(&r);
        ++answered;
      }
      if (answered == n) return absl::OkStatus();
    }
  }
  if (!ended_) {
    // A failed Write or Read: the stream is over; Finish tells why.
    ended_ = true;
    end = EndStatus(stream_->Finish());
  }
  for (int i = 0; i < n; ++i) {
    if (results[i].id() == 0) FillEnded(first + i, end, &results[i]);
  }
  return end;
}

absl::Status SingleUserStream::Close() {
  if (ended_) return absl::FailedPreconditionError("the session stream has ended");
  ended_ = true;
  stream_->WritesDone();
  while (stream_->Read(&response_)) {
  }
  grpc::Status status = stream_->Finish();
  if (status.ok()) return absl::OkStatus();
  return EndStatus(status);
}

// --- SharedStream ---

absl::StatusOr<std::unique_ptr<SharedStream>> SharedStream::Open(
    const std::shared_ptr<grpc::Channel>& channel, absl::string_view label,
    std::chrono::seconds ttl, std::chrono::system_clock::time_point deadline) {
  std::unique_ptr<SharedStream> s(new SharedStream());
  s->context_.set_deadline(deadline);
  s->stub_ = baton::v1::Stream::NewStub(channel);
  s->stream_ = s->stub_->Connect(&s->context_);
  absl::StatusOr<uint64_t> session = Hello(*s->stream_, label, ttl);
  if (!session.ok()) {
    s->ended_ = true;
    s->read_done_ = true;
    s->end_status_ = session.status();
    return session.status();
  }
  s->session_id_ = *session;
  s->reader_ = std::thread([p = s.get()] { p->ReadLoop(); });
  return s;
}

SharedStream::~SharedStream() {
  if (reader_.joinable()) {
    context_.TryCancel();
    reader_.join();
  }
}

void SharedStream::Start(baton::v1::Operation& op, Waiter* waiter, bool flush) {
  std::unique_lock lock(mu_);
  const uint64_t id = next_id_++;
  if (ended_ || half_closed_) {
    const absl::Status end =
        ended_ ? end_status_ : absl::FailedPreconditionError("the session stream is half-closed");
    lock.unlock();
    baton::v1::OperationResult result;
    FillEnded(id, end, &result);
    waiter->OnResult(result);
    return;
  }
  op.set_id(id);
  waiters_.emplace(id, waiter);
  out_.add_ops()->Swap(&op);
  // The reader writes once it has dispatched the whole message.
  if (flush && std::this_thread::get_id() != reader_id_) WriteLocked(lock);
}

void SharedStream::Cancel(uint64_t id, bool flush) {
  std::unique_lock lock(mu_);
  if (ended_ || half_closed_) return;
  out_.add_cancel(id);
  if (flush && std::this_thread::get_id() != reader_id_) WriteLocked(lock);
}

void SharedStream::Flush() {
  std::unique_lock lock(mu_);
  WriteLocked(lock);
}

void SharedStream::WriteLocked(std::unique_lock<std::mutex>& lock) {
  // One writer at a time; what others start meanwhile goes in its next
  // message.
  if (writing_) return;
  writing_ = true;
  while (!read_done_ && !half_closed_ && (out_.ops_size() > 0 || out_.cancel_size() > 0)) {
    sending_.Swap(&out_);
    ++stats_.messages_sent;
    stats_.ops_sent += sending_.ops_size();
    lock.unlock();
    const bool ok = stream_->Write(sending_);
    sending_.Clear();
    lock.lock();
    // A failed write means the stream is over: the reader sees its end and
    // answers every pending operation.
    if (!ok) break;
  }
  writing_ = false;
  idle_.notify_all();
}

absl::Status SharedStream::Exchange(baton::v1::Operation* ops, int n,
                                    baton::v1::OperationResult* results) {
  struct Group {
    std::mutex mu;
    std::condition_variable done;
    int left;
  } group;
  group.left = n;
  struct Slot final : Waiter {
    Group* group = nullptr;
    baton::v1::OperationResult* result = nullptr;
    void OnResult(baton::v1::OperationResult& r) override {
      result->Swap(&r);
      // Notified under the lock: the group lives on the waiting thread's
      // stack and may be gone as soon as it sees `left` reach 0.
      std::lock_guard lock(group->mu);
      if (--group->left == 0) group->done.notify_one();
    }
  };
  absl::InlinedVector<Slot, 4> slots(n);
  for (int i = 0; i < n; ++i) {
    slots[i].group = &group;
    slots[i].result = &results[i];
    results[i].Clear();
    // Start takes the contents; give it a copy so the caller keeps `ops`.
    baton::v1::Operation op = ops[i];
    Start(op, &slots[i], /*flush=*/i == n - 1);
  }
  {
    std::unique_lock lock(group.mu);
    group.done.wait(lock, [&] { return group.left == 0; });
  }
  std::lock_guard lock(mu_);
  if (ended_) {
    for (int i = 0; i < n; ++i) {
      if (results[i].code() != 0) return end_status_;
    }
  }
  return absl::OkStatus();
}

uint64_t SharedStream::next_id() const {
  std::lock_guard lock(mu_);
  return next_id_;
}

SharedStream::Stats SharedStream::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

size_t SharedStream::pending() const {
  std::lock_guard lock(mu_);
  return waiters_.size();
}

void SharedStream::ReadLoop() {
  {
    // Set before the first Read, so before any answer is dispatched.
    std::lock_guard lock(mu_);
    reader_id_ = std::this_thread::get_id();
  }
  baton::v1::StreamResponse response;
  std::vector<std::pair<Waiter*, baton::v1::OperationResult*>> batch;
  while (stream_->Read(&response)) {
    {
      std::lock_guard lock(mu_);
      ++stats_.messages_received;
      stats_.answers_received += response.results_size();
      for (baton::v1::OperationResult& r : *response.mutable_results()) {
        auto it = waiters_.find(r.id());
        if (it == waiters_.end()) continue;  // Not ours: ignored.
        batch.emplace_back(it->second, &r);
        waiters_.erase(it);
      }
    }
    for (auto& [waiter, result] : batch) waiter->OnResult(*result);
    batch.clear();
    // What the waiters started goes out in one message.
    std::unique_lock lock(mu_);
    WriteLocked(lock);
  }
  // No more writes; Finish must not run alongside one.
  {
    std::unique_lock lock(mu_);
    read_done_ = true;
    idle_.wait(lock, [&] { return !writing_; });
  }
  const grpc::Status status = stream_->Finish();
  const bool end_ok = status.ok();
  const absl::Status end = EndStatus(status);
  absl::flat_hash_map<uint64_t, Waiter*> left;
  {
    std::lock_guard lock(mu_);
    ended_ = true;
    ended_ok_ = end_ok;
    end_status_ = end;
    left.swap(waiters_);
  }
  baton::v1::OperationResult result;
  for (auto& [id, waiter] : left) {
    FillEnded(id, end, &result);
    waiter->OnResult(result);
  }
}

absl::Status SharedStream::Close(bool cancel) {
  if (cancel) {
    context_.TryCancel();
  } else {
    std::unique_lock lock(mu_);
    WriteLocked(lock);
    idle_.wait(lock, [&] { return !writing_; });
    if (!half_closed_ && !read_done_) {
      half_closed_ = true;
      writing_ = true;  // Keeps everyone else from writing alongside.
      lock.unlock();
      stream_->WritesDone();
      lock.lock();
      writing_ = false;
      idle_.notify_all();
    }
    half_closed_ = true;
  }
  if (reader_.joinable()) reader_.join();
  std::lock_guard lock(mu_);
  return ended_ok_ ? absl::OkStatus() : end_status_;
}

}  // namespace baton::bench
