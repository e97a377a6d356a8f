// The exposition text, byte for byte: what Prometheus and promtool parse.
#include <cmath>
#include <limits>
#include <string>

#include "gtest/gtest.h"
#include "metrics/registry.h"
#include "metrics/text_format.h"

namespace quantd::metrics {
namespace {

TEST(TextFormatTest, FormatsValuesSoTheyParseBack) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(42), "42");
  EXPECT_EQ(FormatValue(-1.5), "-1.5");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(3.5e9), "3500000000");
  EXPECT_EQ(FormatValue(-0.0), "0");
  EXPECT_EQ(FormatValue(1e21), "1e+21");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
  EXPECT_EQ(std::stod(FormatValue(1.0 / 3.0)), 1.0 / 3.0);
}

TEST(TextFormatTest, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(EscapeLabelValue(R"(a"b\c)"
                             "\n"),
            R"(a\"b\\c\n)");
  // Help text keeps double quotes as they are.
  EXPECT_EQ(EscapeHelp("say \"hi\"\\\n"), R"(say "hi"\\\n)");
  EXPECT_EQ(EscapeLabelValue("plain ünïcode"), "plain ünïcode");
}

TEST(TextFormatTest, SerializesEveryTypeInNameOrder) {
  Registry registry;
  auto requests = registry.AddCounterFamily("b_requests_total", "Requests.\nSecond line \\ end.",
                                            {"method", "code"});
  ASSERT_TRUE(requests.ok()) << requests.status();
  (*(*requests)->Add({{"method", "Submit"}, {"code", "OK"}}))->Increment(3);
  (*(*requests)->Add({{"method", "Get"}, {"code", "NOT_FOUND"}}))->Increment();
  (*(*requests)->Add({{"method", "Get"}, {"code", "OK"}}))->Increment(2);

  auto depth = registry.AddGaugeFamily("c_queue_depth", "Queue depth.");
  ASSERT_TRUE(depth.ok());
  (*(*depth)->Add({}))->Set(-2.5);

  auto latency = registry.AddHistogramFamily("a_latency_seconds", "Latency.", {"path"}, {0.5, 1});
  ASSERT_TRUE(latency.ok());
  Histogram* h = *(*latency)->Add({{"path", "a\"b\\c\nd"}});
  h->Observe(0.5);  // "le" is inclusive
  h->Observe(0.75);
  h->Observe(7);

  // A labelled family with no children is not exported.
  ASSERT_TRUE(registry.AddGaugeFamily("d_unused", "Unused.", {"x"}).ok());

  EXPECT_EQ(registry.Serialize(),
            "# HELP a_latency_seconds Latency.\n"
            "# TYPE a_latency_seconds histogram\n"
            "a_latency_seconds_bucket{path=\"a\\\"b\\\\c\\nd\",le=\"0.5\"} 1\n"
            "a_latency_seconds_bucket{path=\"a\\\"b\\\\c\\nd\",le=\"1\"} 2\n"
            "a_latency_seconds_bucket{path=\"a\\\"b\\\\c\\nd\",le=\"+Inf\"} 3\n"
            "a_latency_seconds_sum{path=\"a\\\"b\\\\c\\nd\"} 8.25\n"
            "a_latency_seconds_count{path=\"a\\\"b\\\\c\\nd\"} 3\n"
            "# HELP b_requests_total Requests.\\nSecond line \\\\ end.\n"
            "# TYPE b_requests_total counter\n"
            "b_requests_total{method=\"Get\",code=\"NOT_FOUND\"} 1\n"
            "b_requests_total{method=\"Get\",code=\"OK\"} 2\n"
            "b_requests_total{method=\"Submit\",code=\"OK\"} 3\n"
            "# HELP c_queue_depth Queue depth.\n"
            "# TYPE c_queue_depth gauge\n"
            "c_queue_depth -2.5\n");
}

TEST(TextFormatTest, UnlabelledHistogramHasOnlyTheLeLabel) {
  Registry registry;
  auto latency = registry.AddHistogramFamily("x_seconds", "X.", {}, {1});
  ASSERT_TRUE(latency.ok());
  EXPECT_EQ(registry.Serialize(),
            "# HELP x_seconds X.\n"
            "# TYPE x_seconds histogram\n"
            "x_seconds_bucket{le=\"1\"} 0\n"
            "x_seconds_bucket{le=\"+Inf\"} 0\n"
            "x_seconds_sum 0\n"
            "x_seconds_count 0\n");
}

}  // namespace
}  // namespace quantd::metrics
