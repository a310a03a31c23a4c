// NewQueueClient: picks the QueueClient of a target.
#include "bench/queue_client.h"

namespace baton::bench {

std::unique_ptr<QueueClient> NewQueueClient(Target target, QueueRole role, int index,
                                            const std::string& addr,
                                            std::chrono::milliseconds call_timeout, bool stream,
                                            int batch) {
  switch (target) {
    case Target::kBaton:
      return NewBatonQueueClient(role, index, addr, call_timeout, stream, batch);
    case Target::kRedis:
      return NewRedisQueueClient(addr, call_timeout);
    case Target::kBeanstalkd:
      return NewBeanstalkQueueClient(role, addr, call_timeout, batch);
    case Target::kEcho:
    case Target::kEtcd:
      break;  // Locks only; ParseOptions refuses them for the queue workload.
  }
  return nullptr;
}

}  // namespace baton::bench
