#include "service/apply/shard.h"

namespace baton::apply {

Shard::Shard(uint32_t index, uint32_t shard_count, Cluster* cluster, runtime::Loop* loop,
             Limits limits, int64_t token_offset, uint64_t id_base)
    : index_(index),
      cluster_(cluster),
      loop_(loop),
      state_(index, shard_count, limits, token_offset, id_base) {}

OpRef Shard::Register(OpSink* sink) {
  uint64_t id = next_op_id_++;
  sinks_[id] = sink;
  return OpRef{index_, id};
}

void Shard::Unregister(OpRef op) { sinks_.erase(op.id); }

void Shard::Send(uint32_t target, Command command, OpRef origin) {
  Shard* to = &cluster_->shard(target);
  if (to == this) {
    loop_->Defer([this, c = std::move(command), origin]() mutable { ApplyHere(c, origin); });
  } else {
    to->loop_->Post([to, c = std::move(command), origin]() mutable { to->ApplyHere(c, origin); });
  }
}

void Shard::ApplyHere(const Command& command, OpRef origin) {
  Effects effects;
  state_.Apply(command, origin, loop_->clock().Now(), effects);
  Perform(effects);
}

void Shard::OnTimer(Time now) {
  Effects effects;
  state_.OnTimer(now, effects);
  Perform(effects);
}

void Shard::Perform(Effects& effects) {
  for (Effect& e : effects) {
    if (auto* reply = std::get_if<Reply>(&e)) {
      if (reply->op.id == 0) continue;
      if (reply->op.shard == index_) {
        DeliverHere(reply->op.id, std::move(reply->result));
      } else {
        Shard* to = &cluster_->shard(reply->op.shard);
        to->loop_->Post([to, id = reply->op.id, r = std::move(reply->result)]() mutable {
          to->DeliverHere(id, std::move(r));
        });
      }
    } else if (auto* f = std::get_if<Forward>(&e)) {
      Send(cluster_->ShardOfName(f->name), std::move(f->command), OpRef{});
    } else {
      auto& b = std::get<Broadcast>(e);
      for (uint32_t i = 0; i < cluster_->size(); ++i) {
        if (i == index_) continue;
        Shard* to = &cluster_->shard(i);
        to->loop_->Post([to, c = b.command]() { to->ApplyHere(c, OpRef{}); });
      }
    }
  }
}

void Shard::DeliverHere(uint64_t op_id, Result result) {
  auto it = sinks_.find(op_id);
  if (it == sinks_.end()) return;  // the op ended; nothing waits for this
  it->second->Deliver(std::move(result));
}

}  // namespace baton::apply
