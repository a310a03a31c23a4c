// Encoding and decoding of queue workload items.
#include "bench/queue_item.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace baton::bench {

void EncodeItem(uint64_t run, int producer, int64_t put_ns, std::string* out) {
  out->clear();
  absl::StrAppend(out, absl::Hex(run), ":", producer, ":", put_ns);
}

std::string EncodeStop(uint64_t run) { return absl::StrCat(absl::Hex(run), ":stop"); }

DecodedItem DecodeItem(absl::string_view data, uint64_t run) {
  DecodedItem item;
  const std::vector<absl::string_view> fields = absl::StrSplit(data, ':');
  uint64_t item_run = 0;
  if (fields.size() < 2 || !absl::SimpleHexAtoi(fields[0], &item_run) || item_run != run) {
    return item;
  }
  if (fields.size() == 2 && fields[1] == "stop") {
    item.kind = ItemKind::kStop;
  } else if (fields.size() == 3 && absl::SimpleAtoi(fields[1], &item.producer) &&
             item.producer >= 0 && absl::SimpleAtoi(fields[2], &item.put_ns)) {
    item.kind = ItemKind::kItem;
  }
  return item;
}

}  // namespace baton::bench
