// The payload of a queue workload item: which run and producer put it, and
// when. Producers and consumers are threads of one process, so the put time
// is a steady_clock reading that a consumer can subtract from its own.
//
//   "<run>:<producer>:<put_ns>"   an item (run in hex, the others decimal)
//   "<run>:stop"                  a stop marker: the consumer that gets it
//                                 stops; put once per consumer after the
//                                 last item, so FIFO drains every item first
//
// An item of another run (a leftover of an earlier one) decodes as foreign.
#ifndef BATON_BENCH_QUEUE_ITEM_H_
#define BATON_BENCH_QUEUE_ITEM_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace baton::bench {

enum class ItemKind {
  kItem,     // An item of this run.
  kStop,     // A stop marker of this run.
  kForeign,  // Anything else: another run's, or not ours at all.
};

struct DecodedItem {
  ItemKind kind = ItemKind::kForeign;
  // For kItem only.
  int producer = 0;
  int64_t put_ns = 0;
};

// Sets `*out` to an item of `run` put by `producer` at `put_ns`.
void EncodeItem(uint64_t run, int producer, int64_t put_ns, std::string* out);

// A stop marker of `run`.
std::string EncodeStop(uint64_t run);

// What `data` is, seen from run `run`.
DecodedItem DecodeItem(absl::string_view data, uint64_t run);

}  // namespace baton::bench

#endif  // BATON_BENCH_QUEUE_ITEM_H_
