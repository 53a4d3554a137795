#include "model/cp_layout.h"

#include <algorithm>

#include "common/error.h"

namespace tessera {

int64_t CpPlacement::rows(int r) const {
  if (replicated) return n;
  return blocks[r][0].length + blocks[r][1].length;
}

int64_t CpPlacement::stored(int r) const {
  if (replicated) return r == owner ? n : 0;
  return rows(r);
}

CpPlacement cp_place(int64_t n, int cp, std::span<const int64_t> kv_lens) {
  TESSERA_REQUIRE(cp >= 1 && static_cast<int64_t>(kv_lens.size()) == cp, ErrorKind::kInternal,
                  "context-parallel placement: ", kv_lens.size(), " KV lengths for cp = ", cp);
  CpPlacement p;
  p.cp = cp;
  p.n = n;
  if (n < 2 * cp) {
    p.replicated = true;
    p.owner = static_cast<int>(std::min_element(kv_lens.begin(), kv_lens.end()) - kv_lens.begin());
    return p;
  }
  // Block b = tokens [b n / 2C, (b + 1) n / 2C): sizes differ by at most one.
  const int64_t n_blocks = 2 * cp;
  auto block = [&](int64_t b) {
    const int64_t begin = b * n / n_blocks, end = (b + 1) * n / n_blocks;
    return CpSegment{begin, end - begin};
  };
  p.blocks.resize(cp);
  for (int r = 0; r < cp; ++r) p.blocks[r] = {block(r), block(n_blocks - 1 - r)};
  return p;
}

void cp_advance(const CpPlacement& p, std::vector<int64_t>& kv_lens) {
  for (int r = 0; r < p.cp; ++r) kv_lens[r] += p.stored(r);
}

int64_t cp_slots_after(const CpPlacement& p, std::span<const int64_t> kv_lens) {
  int64_t most = 0;
  for (int r = 0; r < p.cp; ++r) most = std::max(most, kv_lens[r] + p.stored(r));
  return most;
}

}  // namespace tessera
