// QueueClient for beanstalkd, a work queue with acknowledgements. Producers
// `use` the tube kQueueName and `put` jobs into it; consumers `watch` it
// (and ignore "default"), `reserve-with-timeout` a job and `delete` it, which
// is the acknowledgement: a reserved job whose consumer goes away before the
// delete goes back to the tube, as an unacknowledged Baton item does.
//
// Speaks beanstalkd's text protocol (doc/protocol.txt in its sources) over a
// plain blocking TCP connection; each command is written with one send
// (--batch N: N commands per send, pipelined). All jobs have one priority,
// so a tube is FIFO.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "bench/queue_client.h"
#include "bench/tcp_connection.h"

namespace baton::bench {
namespace {

// put <pri> <delay> <ttr>: one priority for all (FIFO), no delay, and a
// time-to-run far beyond any run (the delete comes within a round trip).
constexpr absl::string_view kPutCommand = "put 1024 0 60 ";
// Largest job accepted from a reserve, against a corrupt length (beanstalkd's
// own limit is 64 KiB by default).
constexpr uint64_t kMaxJobBytes = 64 * 1024 * 1024;

class BeanstalkQueueClient : public QueueClient {
 public:
  BeanstalkQueueClient(QueueRole role, std::string addr, std::chrono::milliseconds call_timeout,
                       int batch)
      : role_(role),
        addr_(std::move(addr)),
        call_timeout_(call_timeout),
        batch_(batch),
        reserve_(absl::StrCat("reserve-with-timeout ", kGetTimeout.count(), "\r\n")) {}

  absl::Status Open(std::chrono::milliseconds connect_timeout) override {
    // A blocked reserve may legitimately take kGetTimeout before it answers.
    auto connection = TcpConnection::Connect(addr_, connect_timeout, kGetTimeout + call_timeout_);
    if (!connection.ok()) return connection.status();
    connection_ = *std::move(connection);
    if (role_ == QueueRole::kProducer) {
      return Command(absl::StrCat("use ", kQueueName, "\r\n"), absl::StrCat("USING ", kQueueName));
    }
    if (absl::Status status = Command(absl::StrCat("watch ", kQueueName, "\r\n"), "WATCHING 2");
        !status.ok()) {
      return status;
    }
    return Command("ignore default\r\n", "WATCHING 1");
  }

  absl::Status Purge() override {
    // Takes and deletes whatever is ready at once, until nothing is.
    for (;;) {
      absl::StatusOr<bool> got = Reserve("reserve-with-timeout 0\r\n", &scratch_);
      if (!got.ok()) return got.status();
      if (!*got) return absl::OkStatus();
      if (absl::Status status = Delete(reserved_id_); !status.ok()) return status;
    }
  }

  absl::Status Put(absl::string_view data) override {
    request_.assign(kPutCommand.data(), kPutCommand.size());
    absl::StrAppend(&request_, data.size(), "\r\n", data, "\r\n");
    if (absl::Status status = Send(request_, "put"); !status.ok()) return status;
    if (!absl::StartsWith(line_, "INSERTED ")) {
      return absl::FailedPreconditionError(absl::StrCat("put: ", line_));
    }
    return absl::OkStatus();
  }

  // --batch: every put in one write, then every reply.
  absl::Status PutMany(const std::vector<std::string>& items) override {
    request_.clear();
    for (const std::string& data : items) {
      absl::StrAppend(&request_, kPutCommand, data.size(), "\r\n", data, "\r\n");
    }
    if (absl::Status status = connection_->Write(request_); !status.ok()) {
      return absl::Status(status.code(), absl::StrCat("put: ", status.message()));
    }
    for (size_t i = 0; i < items.size(); ++i) {
      if (absl::Status status = connection_->ReadLine(&line_); !status.ok()) {
        return absl::Status(status.code(), absl::StrCat("put: ", status.message()));
      }
      if (!absl::StartsWith(line_, "INSERTED ")) {
        return absl::FailedPreconditionError(absl::StrCat("put: ", line_));
      }
    }
    return absl::OkStatus();
  }

  // --batch 1: one reserve, and Ack deletes. --batch N: the deletes of the
  // jobs handed out since the last write, a blocking reserve and N - 1
  // reserves that do not wait go in one write (pipelined, beanstalkd's way
  // to batch); the jobs come back one per Get.
  absl::StatusOr<bool> Get(std::string* data) override {
    if (batch_ == 1) return Reserve(reserve_, data);
    if (next_ < jobs_.size()) return TakeJob(data);
    jobs_.clear();
    next_ = 0;
    request_.clear();
    for (uint64_t id : pending_deletes_) absl::StrAppend(&request_, "delete ", id, "\r\n");
    absl::StrAppend(&request_, reserve_);
    for (int i = 1; i < batch_; ++i) absl::StrAppend(&request_, "reserve-with-timeout 0\r\n");
    if (absl::Status status = connection_->Write(request_); !status.ok()) {
      return absl::Status(status.code(), absl::StrCat("reserve: ", status.message()));
    }
    for (size_t i = 0; i < pending_deletes_.size(); ++i) {
      if (absl::Status status = connection_->ReadLine(&line_); !status.ok()) {
        return absl::Status(status.code(), absl::StrCat("delete: ", status.message()));
      }
      if (line_ != "DELETED") return absl::FailedPreconditionError(absl::StrCat("delete: ", line_));
    }
    pending_deletes_.clear();
    for (int i = 0; i < batch_; ++i) {
      absl::StatusOr<bool> got = ReadReserved(&scratch_);
      if (!got.ok()) return got.status();
      if (*got) jobs_.emplace_back(reserved_id_, std::move(scratch_));
    }
    if (jobs_.empty()) return false;
    return TakeJob(data);
  }

  absl::Status Ack() override {
    if (batch_ > 1) {
      pending_deletes_.push_back(reserved_id_);  // With the next Get's write, or by Close.
      return absl::OkStatus();
    }
    return Delete(reserved_id_);
  }

  void Close() override {
    // Best effort: a job not deleted goes back to the tube when we hang up.
    for (uint64_t id : pending_deletes_) {
      if (!Delete(id).ok()) break;
    }
    pending_deletes_.clear();
    connection_.reset();
  }

 private:
  // Deletes job `id` (the acknowledgement), one round trip.
  absl::Status Delete(uint64_t id) {
    request_.assign("delete ");
    absl::StrAppend(&request_, id, "\r\n");
    if (absl::Status status = Send(request_, "delete"); !status.ok()) return status;
    if (line_ != "DELETED") return absl::FailedPreconditionError(absl::StrCat("delete: ", line_));
    return absl::OkStatus();
  }

  // Writes `request` and reads the reply's first line into line_.
  absl::Status Send(absl::string_view request, absl::string_view what) {
    absl::Status status = connection_->Write(request);
    if (status.ok()) status = connection_->ReadLine(&line_);
    if (!status.ok())
      return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
    return absl::OkStatus();
  }

  // Sends `request` and fails unless the reply is `want`.
  absl::Status Command(absl::string_view request, absl::string_view want) {
    const absl::string_view what = request.substr(0, request.find(' '));
    if (absl::Status status = Send(request, what); !status.ok()) return status;
    if (line_ != want) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, ": want '", want, "', got '", line_, "'"));
    }
    return absl::OkStatus();
  }

  // Sends a reserve command; on RESERVED reads the job into `*data` and
  // remembers its id for Ack.
  absl::StatusOr<bool> Reserve(absl::string_view request, std::string* data) {
    if (absl::Status status = connection_->Write(request); !status.ok()) {
      return absl::Status(status.code(), absl::StrCat("reserve: ", status.message()));
    }
    return ReadReserved(data);
  }

  // Reads the reply to one reserve.
  absl::StatusOr<bool> ReadReserved(std::string* data) {
    if (absl::Status status = connection_->ReadLine(&line_); !status.ok()) {
      return absl::Status(status.code(), absl::StrCat("reserve: ", status.message()));
    }
    if (line_ == "TIMED_OUT") return false;
    // RESERVED <id> <bytes>
    std::vector<absl::string_view> words = absl::StrSplit(line_, ' ');
    uint64_t bytes = 0;
    if (words.size() != 3 || words[0] != "RESERVED" || !absl::SimpleAtoi(words[1], &reserved_id_) ||
        !absl::SimpleAtoi(words[2], &bytes) || bytes > kMaxJobBytes) {
      return absl::FailedPreconditionError(absl::StrCat("reserve: ", line_));
    }
    if (absl::Status status = connection_->ReadExact(bytes + 2, data); !status.ok()) {
      return absl::Status(status.code(), absl::StrCat("reserve: ", status.message()));
    }
    if (absl::string_view(*data).substr(bytes) != "\r\n") {
      return absl::DataLossError("reserve: job not followed by CRLF");
    }
    data->resize(bytes);
    return true;
  }

  bool TakeJob(std::string* data) {
    reserved_id_ = jobs_[next_].first;
    *data = std::move(jobs_[next_].second);
    ++next_;
    return true;
  }

  const QueueRole role_;
  const std::string addr_;
  const std::chrono::milliseconds call_timeout_;
  const int batch_;
  const std::string reserve_;
  // --batch N: jobs reserved by the last write (id, body), handed out from
  // next_ on, and the ids handed out and acknowledged since.
  std::vector<std::pair<uint64_t, std::string>> jobs_;
  size_t next_ = 0;
  std::vector<uint64_t> pending_deletes_;
  std::unique_ptr<TcpConnection> connection_;
  // The job the last reserve returned, for Ack.
  uint64_t reserved_id_ = 0;
  // Reused across calls to keep allocation out of the loop.
  std::string request_;
  std::string line_;
  std::string scratch_;
};

}  // namespace

std::unique_ptr<QueueClient> NewBeanstalkQueueClient(QueueRole role, const std::string& addr,
                                                     std::chrono::milliseconds call_timeout,
                                                     int batch) {
  return std::make_unique<BeanstalkQueueClient>(role, addr, call_timeout, batch);
}

}  // namespace baton::bench
