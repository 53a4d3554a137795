// Context parallelism (docs/CONTEXT_PARALLEL.md): which CP rank computes and stores
// which of a step's new tokens. Pure arithmetic, so the coordinator (which sizes the
// block tables) and every worker (which computes its rows) agree without talking.
//
// A sequence slice of n new tokens at positions pos0 .. pos0 + n - 1 is placed one of
// two ways over C ranks, given kv_lens[r] = the KV entries rank r holds before the step:
//   split (n >= 2C, prefill chunks): the slice is cut into 2C near-equal blocks in
//     position order; rank r computes and stores blocks r and 2C-1-r (zigzag), so every
//     rank gets the same causal attention work. Its rows are those two blocks, in order.
//   replicated (n < 2C, decode and short slices): every rank computes all n rows (the
//     same values), and the least-loaded rank (lowest index on ties) stores their KV, so
//     new KV lands on the ranks in turn and the shards stay balanced.
// A rank's KV shard is dense: its entries are local slots 0 .. kv_lens[r] - 1, in the
// order they arrived, indexed through the sequence's block table (which, like for TP
// and PP, is the same on every rank and covers the longest shard).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace tessera {

struct CpSegment {
  int64_t offset = 0;  // first token, as an index into the slice's tokens
  int64_t length = 0;
};

struct CpPlacement {
  int cp = 1;
  int64_t n = 0;
  bool replicated = false;
  int owner = -1;  // replicated: the rank storing the KV of all n tokens
  // split: per rank its two zigzag blocks r and 2C-1-r (position order, both
  // non-empty since n >= 2C). Replicated: unused.
  std::vector<std::array<CpSegment, 2>> blocks;

  // Rows rank r computes (and whose hidden states it holds).
  int64_t rows(int r) const;
  // KV entries rank r stores in this step.
  int64_t stored(int r) const;
};

// Throws tessera::Error(kInternal) when kv_lens does not have cp entries.
CpPlacement cp_place(int64_t n_tokens, int cp, std::span<const int64_t> kv_lens);

// kv_lens after the step (kv_lens[r] += placement.stored(r)).
void cp_advance(const CpPlacement& placement, std::vector<int64_t>& kv_lens);

// The local KV slots the block table must cover after the step: max_r of the new kv_lens.
int64_t cp_slots_after(const CpPlacement& placement, std::span<const int64_t> kv_lens);

}  // namespace tessera
