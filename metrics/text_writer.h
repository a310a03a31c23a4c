// TextWriter: builds a page of the Prometheus text exposition format
// (version 0.0.4): each family's # HELP and # TYPE once, then its samples,
// label values escaped. What `promtool check metrics` accepts.
//
// Threading: one writer per scrape; not shared.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "metrics/histogram.h"

namespace baton::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class TextWriter {
 public:
  // Starts a family. `type`: counter, gauge or histogram. A family started
  // twice is written once (its later samples join it only if adjacent:
  // callers write each family's samples together).
  void Family(const std::string& name, const std::string& type, const std::string& help);
  void Sample(const std::string& name, const Labels& labels, double value);
  // A histogram's _bucket, _sum and _count samples; bounds and sum are
  // multiplied by `scale` (1e-9: nanoseconds to seconds).
  void Histogram(const std::string& name, const Labels& labels, const Histogram::Snapshot& h,
                 double scale);

  const std::string& text() const { return out_; }

 private:
  std::string out_;
  std::vector<std::string> families_;
};

}  // namespace baton::metrics
