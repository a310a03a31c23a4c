#include "service/primitives/permit_pool.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace baton::primitives {

const Holding& PermitPool::Grant(Holding h) {
  used_ += h.count;
  uint64_t token = h.token;
  return holdings_.insert_or_assign(token, std::move(h)).first->second;
}

Holding* PermitPool::FindReplay(uint64_t session, const std::string& request_id) {
  if (request_id.empty()) return nullptr;
  for (auto& [token, h] : holdings_) {
    if (h.session == session && h.request_id == request_id) return &h;
  }
  return nullptr;
}

absl::StatusOr<Holding*> PermitPool::FindOwned(uint64_t token, uint64_t session,
                                               const std::string& what) {
  auto it = holdings_.find(token);
  if (it == holdings_.end()) {
    return absl::FailedPreconditionError(absl::StrCat(what, " is not held under token ", token,
                                                      " (released, expired, or never granted)"));
  }
  if (it->second.session != session) {
    return absl::FailedPreconditionError(absl::StrCat(what, " token ", token,
                                                      " is held by session ", it->second.session,
                                                      ", not by session ", session));
  }
  return &it->second;
}

int64_t PermitPool::Return(uint64_t token, int64_t count) {
  auto it = holdings_.find(token);
  Holding& h = it->second;
  if (count <= 0 || count >= h.count) {
    used_ -= h.count;
    holdings_.erase(it);
    return 0;
  }
  h.count -= count;
  used_ -= count;
  return h.count;
}

std::vector<uint64_t> PermitPool::RemoveSession(uint64_t session) {
  std::vector<uint64_t> tokens;
  for (auto it = holdings_.begin(); it != holdings_.end();) {
    if (it->second.session == session) {
      tokens.push_back(it->first);
      used_ -= it->second.count;
      it = holdings_.erase(it);
    } else {
      ++it;
    }
  }
  return tokens;
}

std::vector<Waiter> PermitPool::PopGrantable() {
  std::vector<Waiter> out;
  int64_t free = available();
  while (!waiters_.empty() && waiters_.front().count <= free) {
    free -= waiters_.front().count;
    out.push_back(waiters_.PopFront());
  }
  return out;
}

}  // namespace baton::primitives
