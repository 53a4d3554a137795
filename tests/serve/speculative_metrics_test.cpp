// /metrics for speculative decoding: the K-per-verify-slice histogram
// (tessera_speculative_k) rendered from the serving loop's counts, next to the
// existing counters it must agree with (sum = drafted tokens, count = verify passes).
#include <gtest/gtest.h>

#include <string>

#include "server/metrics.h"

namespace tessera::server {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(SpeculativeMetrics, KHistogramAgreesWithTheCounters) {
  LoopStats loop;
  loop.verify_k_counts = {0, 2, 0, 3, 0, 0, 0, 0, 1, 0, 4};  // K 1 x2, 3 x3, 8 x1, 10 x4
  loop.verify_steps = 10;
  loop.draft_tokens = 2 * 1 + 3 * 3 + 8 + 4 * 10;
  const std::string text = Metrics().render(loop, "m");
  EXPECT_TRUE(has_line(text, "# TYPE tessera_speculative_k histogram")) << text;
  EXPECT_TRUE(has_line(text, "tessera_speculative_k_bucket{le=\"1\"} 2"));
  EXPECT_TRUE(has_line(text, "tessera_speculative_k_bucket{le=\"2\"} 2"));
  EXPECT_TRUE(has_line(text, "tessera_speculative_k_bucket{le=\"3\"} 5"));
  EXPECT_TRUE(has_line(text, "tessera_speculative_k_bucket{le=\"7\"} 5"));
  EXPECT_TRUE(has_line(text, "tessera_speculative_k_bucket{le=\"8\"} 6"));
  EXPECT_TRUE(has_line(text, "tessera_speculative_k_bucket{le=\"12\"} 10"));
  EXPECT_TRUE(has_line(text, "tessera_speculative_k_bucket{le=\"+Inf\"} 10"));
  EXPECT_TRUE(has_line(text, "tessera_speculative_k_sum " + std::to_string(loop.draft_tokens)));
  EXPECT_TRUE(has_line(text, "tessera_speculative_k_count 10"));
  EXPECT_TRUE(has_line(text, "tessera_speculative_verify_passes_total 10"));
}

TEST(SpeculativeMetrics, EmptyBeforeAnyDraft) {
  const std::string text = Metrics().render(LoopStats{}, "m");
  EXPECT_TRUE(has_line(text, "tessera_speculative_k_bucket{le=\"16\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "tessera_speculative_k_bucket{le=\"+Inf\"} 0"));
  EXPECT_TRUE(has_line(text, "tessera_speculative_k_count 0"));
}

}  // namespace
}  // namespace tessera::server
