// Paged KV cache of one worker: a pool of fixed-size blocks per layer.
//
// Block b of layer l holds K (and V) for block_size consecutive positions of whichever
// sequence the coordinator gave it to: [block_size][n_kv_heads][head_dim] floats. The
// coordinator owns the allocator and the block tables (coordinator/kv_block_allocator.h);
// the worker only indexes with the ids it is given, so every TP rank and PP stage has a
// pool of the same shape and one block table serves all of them.
#pragma once

#include <cstdint>
#include <vector>

namespace tessera {

struct KvCacheShape {
  int64_t n_layers = 0;    // layers held by this worker (its pipeline stage)
  int64_t n_blocks = 0;
  int64_t block_size = 16; // positions per block
  int64_t n_kv_heads = 0;  // KV heads held by this worker (its TP shard)
  int64_t head_dim = 0;

  int64_t block_floats() const { return block_size * n_kv_heads * head_dim; }
  int64_t bytes() const { return 2 * n_layers * n_blocks * block_floats() * 4; }
};

class KvCache {
 public:
  explicit KvCache(const KvCacheShape& shape);

  const KvCacheShape& shape() const { return shape_; }
  float* k_block(int64_t layer, int64_t block) { return k_.data() + offset(layer, block); }
  float* v_block(int64_t layer, int64_t block) { return v_.data() + offset(layer, block); }
  // Address of K / V of one position, given the sequence's block table.
  float* k_at(int64_t layer, const int32_t* block_table, int64_t pos);
  float* v_at(int64_t layer, const int32_t* block_table, int64_t pos);

 private:
  int64_t offset(int64_t layer, int64_t block) const {
    return (layer * shape_.n_blocks + block) * shape_.block_floats();
  }
  KvCacheShape shape_;
  std::vector<float> k_;  // [n_layers][n_blocks][block_size][n_kv_heads][head_dim]
  std::vector<float> v_;
};

}  // namespace tessera
