// NewLockClient, and the channel and RPC helpers shared by every LockClient.
#include "bench/lock_client.h"

#include <grpc/grpc.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"

namespace baton::bench {

std::string UncontendedLock(int index) { return absl::StrCat("bench/u/", index); }

std::unique_ptr<LockClient> NewLockClient(Target target, int index,
                                          std::shared_ptr<grpc::Channel> channel,
                                          std::chrono::milliseconds call_timeout) {
  switch (target) {
    case Target::kBaton:
      return NewBatonLockClient(index, std::move(channel), call_timeout);
    case Target::kEcho:
      return NewEchoLockClient(std::move(channel), call_timeout);
    case Target::kEtcd:
      return NewEtcdLockClient(std::move(channel), call_timeout);
    case Target::kRedis:
    case Target::kBeanstalkd:
      break;  // Queues only; ParseOptions refuses them for lock workloads.
  }
  return nullptr;
}

std::shared_ptr<grpc::Channel> NewClientChannel(const std::string& addr, int index) {
  grpc::ChannelArguments args;
  // Without these, channels with equal arguments share one subchannel, i.e.
  // one TCP connection, and N clients would really be one.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("baton.bench.client_index", index);
  return grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args);
}

absl::Status WaitForConnected(grpc::Channel& channel, std::chrono::milliseconds timeout) {
  if (!channel.WaitForConnected(std::chrono::system_clock::now() + timeout)) {
    return absl::UnavailableError(
        absl::StrCat("could not connect within ", timeout.count(), " ms"));
  }
  return absl::OkStatus();
}

absl::Status FromGrpc(const grpc::Status& status, absl::string_view what) {
  if (status.ok()) return absl::OkStatus();
  // grpc::StatusCode and absl::StatusCode share their numbering.
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(what, ": ", status.error_message()));
}

void SetDeadline(grpc::ClientContext& context, std::chrono::milliseconds timeout) {
  context.set_deadline(std::chrono::system_clock::now() + timeout);
}

}  // namespace baton::bench
