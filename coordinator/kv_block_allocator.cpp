#include "coordinator/kv_block_allocator.h"

#include "common/error.h"

namespace tessera {

KvBlockAllocator::KvBlockAllocator(int64_t n_blocks) : n_blocks_(n_blocks) {
  TESSERA_REQUIRE(n_blocks > 0 && n_blocks < (int64_t{1} << 31), ErrorKind::kInvalidInput,
                  "KV block count ", n_blocks, " out of range");
  free_.reserve(static_cast<size_t>(n_blocks));
  for (int64_t b = n_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

bool KvBlockAllocator::ensure(std::vector<int32_t>& table, int64_t n_tokens, int64_t block_size) {
  const int64_t need = (n_tokens + block_size - 1) / block_size - static_cast<int64_t>(table.size());
  if (need <= 0) return true;
  if (need > free_blocks()) return false;
  for (int64_t i = 0; i < need; ++i) {
    table.push_back(free_.back());
    free_.pop_back();
  }
  return true;
}

void KvBlockAllocator::release(std::vector<int32_t>& table) {
  for (auto it = table.rbegin(); it != table.rend(); ++it) free_.push_back(*it);
  table.clear();
}

}  // namespace tessera
