// The serving KV block pool: a free list plus prefix caching of full blocks.
//
// A full block is named by the hash of every token up to its end (a chain: the hash of
// block i covers block i's tokens and the hash of block i - 1), so equal prefixes map to
// the same blocks whatever request they came from. Blocks carry reference counts; a
// block nobody references but that holds a published prefix stays cached (an LRU list)
// until a fresh block is needed and the pool has no plain free block left.
//
// Workers never see any of this: they index with the block ids in the step plan.
#pragma once

#include <cstdint>
#include <list>
#include <span>
#include <unordered_map>
#include <vector>

namespace tessera {

class PrefixCache {
 public:
  PrefixCache(int64_t n_blocks, int64_t block_size);

  int64_t capacity() const { return n_blocks_; }
  int64_t block_size() const { return block_size_; }
  // Blocks a new allocation can get: plain free blocks plus evictable cached ones.
  int64_t available() const { return static_cast<int64_t>(free_.size() + lru_.size()); }
  int64_t used() const { return n_blocks_ - available(); }
  int64_t cached() const { return static_cast<int64_t>(by_hash_.size()); }
  int64_t hits() const { return hits_; }        // blocks reused, cumulative
  int64_t evictions() const { return evictions_; }

  // Hash of a block's tokens chained to its predecessor's hash (0 for the first).
  static uint64_t block_hash(uint64_t parent, std::span<const int32_t> tokens);

  // Acquires (reference +1) the cached blocks holding the longest prefix of `tokens`,
  // at most max_blocks of them; returns their ids in order and their hashes in *hashes.
  std::vector<int32_t> match(std::span<const int32_t> tokens, int64_t max_blocks, std::vector<uint64_t>* hashes);
  // Number of blocks match() would return, without acquiring anything.
  int64_t peek(std::span<const int32_t> tokens, int64_t max_blocks) const;

  // A fresh block (reference 1): a free one, else the least recently used cached block
  // is evicted. -1 when every block is referenced.
  int32_t allocate();
  // Grows `table` to cover n_tokens positions; false (and no change) when too few blocks.
  bool ensure(std::vector<int32_t>& table, int64_t n_tokens);

  // Records that `block` (referenced, full, computed) holds the prefix named `hash`.
  // When another block already holds it, nothing changes.
  void publish(int32_t block, uint64_t hash);

  // Reference -1 for every block of `table` (then cleared): a block that reaches 0 is
  // cached when it holds a published prefix, otherwise freed.
  void release(std::vector<int32_t>& table);
  // Releases the blocks of `table` past the first ceil(n_tokens / block_size) (the
  // blocks a speculative verify step reserved for positions that were rejected).
  void shrink(std::vector<int32_t>& table, int64_t n_tokens);

 private:
  struct Block {
    int32_t refs = 0;
    bool has_hash = false;
    uint64_t hash = 0;
    std::list<int32_t>::iterator lru;  // valid when refs == 0 and has_hash
  };

  int64_t n_blocks_, block_size_;
  std::vector<Block> blocks_;
  std::vector<int32_t> free_;                       // LIFO, refs 0, no hash
  std::list<int32_t> lru_;                          // refs 0 with hash, oldest first
  std::unordered_map<uint64_t, int32_t> by_hash_;   // published prefixes
  int64_t hits_ = 0, evictions_ = 0;
};

}  // namespace tessera
