#include "service/rpc/status.h"

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "service/log/sequencer.h"

namespace baton::rpc {

static_assert(std::string_view(kLeaderAddressPayload) == std::string_view(log::kLeaderPayload));

grpc::Status NotLeaderStatus(const absl::Status& s, const std::string& leader_address) {
  google::rpc::ErrorInfo info;
  info.set_reason("NOT_LEADER");
  info.set_domain("baton.dev");
  (*info.mutable_metadata())["leader"] = leader_address;
  google::rpc::Status details;
  details.set_code(static_cast<int>(s.code()));
  details.set_message(std::string(s.message()));
  details.add_details()->PackFrom(info);
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()),
                      details.SerializeAsString());
}

}  // namespace baton::rpc
