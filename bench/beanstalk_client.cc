// QueueClient for beanstalkd, a work queue with acknowledgements. Producers
// `use` the tube kQueueName and `put` jobs into it; consumers `watch` it
// (and ignore "default"), `reserve-with-timeout` a job and `delete` it, which
// is the acknowledgement: a reserved job whose consumer goes away before the
// delete goes back to the tube, as an unacknowledged Baton item does.
//
// Speaks beanstalkd's text protocol (doc/protocol.txt in its sources) over a
// plain blocking TCP connection; each command is written with one send. All
// jobs have one priority, so a tube is FIFO.
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
  BeanstalkQueueClient(QueueRole role, std::string addr, std::chrono::milliseconds call_timeout)
      : role_(role),
        addr_(std::move(addr)),
        call_timeout_(call_timeout),
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
      if (absl::Status status = Ack(); !status.ok()) return status;
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

  absl::StatusOr<bool> Get(std::string* data) override { return Reserve(reserve_, data); }

  absl::Status Ack() override {
    request_.assign("delete ");
    absl::StrAppend(&request_, reserved_id_, "\r\n");
    if (absl::Status status = Send(request_, "delete"); !status.ok()) return status;
    if (line_ != "DELETED") return absl::FailedPreconditionError(absl::StrCat("delete: ", line_));
    return absl::OkStatus();
  }

  void Close() override { connection_.reset(); }

 private:
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
    if (absl::Status status = Send(request, "reserve"); !status.ok()) return status;
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

  const QueueRole role_;
  const std::string addr_;
  const std::chrono::milliseconds call_timeout_;
  const std::string reserve_;
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
                                                     std::chrono::milliseconds call_timeout) {
  return std::make_unique<BeanstalkQueueClient>(role, addr, call_timeout);
}

}  // namespace baton::bench
