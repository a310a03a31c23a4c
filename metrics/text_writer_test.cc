#include "metrics/text_writer.h"

#include <gtest/gtest.h>

namespace baton::metrics {
namespace {

TEST(HistogramTest, CountsEachObservationUnderItsBoundAndCumulates) {
  Histogram h({10, 100, 1000});
  for (uint64_t v : {1, 10, 11, 100, 5000, 7}) h.Observe(v);
  Histogram::Snapshot s = h.Read();
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{3, 5, 5, 6}));
  EXPECT_EQ(s.sum, 1u + 10 + 11 + 100 + 5000 + 7);
}

TEST(HistogramTest, ExponentialBoundsGrow) {
  EXPECT_EQ(Histogram::Exponential(1000, 4, 4), (std::vector<uint64_t>{1000, 4000, 16000, 64000}));
}

TEST(TextWriterTest, WritesHelpAndTypeOnceAndEscapesLabels) {
  TextWriter w;
  w.Family("baton_x_total", "counter", "Things.\nMore");
  w.Sample("baton_x_total", {{"method", "a\"b\\c\nd"}}, 3);
  w.Family("baton_x_total", "counter", "again");
  w.Sample("baton_x_total", {}, 0.25);
  EXPECT_EQ(w.text(),
            "# HELP baton_x_total Things.\\nMore\n"
            "# TYPE baton_x_total counter\n"
            "baton_x_total{method=\"a\\\"b\\\\c\\nd\"} 3\n"
            "baton_x_total 0.25\n");
}

TEST(TextWriterTest, WritesAHistogramInSeconds) {
  Histogram h({1'000'000, 10'000'000});
  h.Observe(500'000);
  h.Observe(20'000'000);
  TextWriter w;
  w.Family("baton_lat_seconds", "histogram", "Latency.");
  w.Histogram("baton_lat_seconds", {{"m", "x"}}, h.Read(), 1e-9);
  EXPECT_EQ(w.text(),
            "# HELP baton_lat_seconds Latency.\n"
            "# TYPE baton_lat_seconds histogram\n"
            "baton_lat_seconds_bucket{m=\"x\",le=\"0.001\"} 1\n"
            "baton_lat_seconds_bucket{m=\"x\",le=\"0.01\"} 1\n"
            "baton_lat_seconds_bucket{m=\"x\",le=\"+Inf\"} 2\n"
            "baton_lat_seconds_sum{m=\"x\"} 0.0205\n"
            "baton_lat_seconds_count{m=\"x\"} 2\n");
}

}  // namespace
}  // namespace baton::metrics
