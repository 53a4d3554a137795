#include "coordinator/adaptive_k.h"

#include <algorithm>

namespace tessera {

void AdaptiveK::update(int64_t proposed, int64_t accepted) {
  if (proposed <= 0) return;
  if (accepted == proposed && proposed == k_) k_ = std::min(k_ + 1, k_max_);
  else if (2 * accepted < proposed) k_ = std::max(k_ - 1, k_min_);
}

void cap_draft_lengths(std::span<int32_t> k, int64_t max_tokens) {
  if (max_tokens <= 0) return;
  int64_t total = 0;
  for (int32_t v : k) total += static_cast<int64_t>(std::max(v, 0)) + 1;
  while (total > max_tokens) {
    // The largest k, the last one on ties; at most sum(k) rounds of a short scan.
    size_t big = k.size();
    for (size_t i = 0; i < k.size(); ++i)
      if (k[i] > 0 && (big == k.size() || k[i] >= k[big])) big = i;
    if (big == k.size()) return;  // every sequence decodes plainly already
    --k[big];
    --total;
  }
}

}  // namespace tessera
