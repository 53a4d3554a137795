// How many draft tokens to verify (docs/SPECULATIVE.md): the adaptive-K rule that
// `tessera generate --draft-k-adaptive` and `tessera serve --draft-k-adaptive` share,
// and the serving scheduler's batch cap on verify tokens.
#pragma once

#include <cstdint>
#include <span>

namespace tessera {

// One sequence's draft length K, adapted to how well its drafts fare: +1 (up to k_max)
// after a round whose K proposals were all accepted, -1 (down to k_min) after a round
// that accepted fewer than half of what was proposed. A round that proposed fewer than
// K (clipped by max_tokens, the context, the batch cap, or a draft with less to say)
// and accepted them all says nothing about a longer draft: K stays.
class AdaptiveK {
 public:
  static constexpr int32_t kMin = 1;
  static constexpr int32_t kMax = 8;

  // `k`: the start value (not clipped to [k_min, k_max]: the first update moves it
  // into range by one step, as generate always did).
  explicit AdaptiveK(int32_t k = 4, int32_t k_min = kMin, int32_t k_max = kMax)
      : k_(k), k_min_(k_min), k_max_(k_max) {}

  int32_t k() const { return k_; }
  // After a verify step of `proposed` draft tokens of which `accepted` were accepted
  // (proposed 0: nothing was verified, no change).
  void update(int64_t proposed, int64_t accepted);

 private:
  int32_t k_;
  int32_t k_min_;
  int32_t k_max_;
};

// The batch cap (`tessera serve --draft-max-batch-tokens N`): `k[i]` is the draft
// length wanted by the i-th decoding sequence of a step (0: plain decode), whose slice
// is k[i] + 1 tokens. While the sum of (k[i] + 1) exceeds max_tokens, the largest k[i]
// shrinks by one (on ties the last one: the most recently admitted sequence gives way
// first), down to 0. Plain decodes are never dropped: with more decoding sequences than
// max_tokens every k[i] ends at 0. max_tokens <= 0: no cap.
void cap_draft_lengths(std::span<int32_t> k, int64_t max_tokens);

}  // namespace tessera
