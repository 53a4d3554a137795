// The coordinator's KV block allocator: a free list over the workers' block pools.
// Workers never allocate; they index with the block ids in the step plan. (Prefix
// caching with block hashes and eviction comes with the serving scheduler.)
#pragma once

#include <cstdint>
#include <vector>

namespace tessera {

class KvBlockAllocator {
 public:
  explicit KvBlockAllocator(int64_t n_blocks);

  int64_t capacity() const { return n_blocks_; }
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t used_blocks() const { return n_blocks_ - free_blocks(); }

  // Grows `table` so it covers n_tokens positions of block_size; false (and no change)
  // when the pool has too few free blocks.
  bool ensure(std::vector<int32_t>& table, int64_t n_tokens, int64_t block_size);
  // Returns every block of `table` to the pool and clears it.
  void release(std::vector<int32_t>& table);

 private:
  int64_t n_blocks_;
  std::vector<int32_t> free_;  // LIFO: recently freed blocks are warm in cache
};

// Returns a block table's blocks to the pool however the scope that owns them ends.
class BlockTableGuard {
 public:
  BlockTableGuard(KvBlockAllocator& allocator, std::vector<int32_t>& table) : allocator_(allocator), table_(table) {}
  ~BlockTableGuard() { allocator_.release(table_); }
  BlockTableGuard(const BlockTableGuard&) = delete;
  BlockTableGuard& operator=(const BlockTableGuard&) = delete;

 private:
  KvBlockAllocator& allocator_;
  std::vector<int32_t>& table_;
};

}  // namespace tessera
