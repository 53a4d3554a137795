#include "model/kv_cache.h"

#include <glog/logging.h>

#include "common/error.h"

namespace tessera {

KvCache::KvCache(const KvCacheShape& shape) : shape_(shape) {
  // n_layers may be 0: a fixed-state model (RecurrentGemma) keeps no paged KV.
  TESSERA_REQUIRE(shape.n_layers >= 0 && shape.n_blocks > 0 && shape.block_size > 0 && shape.n_kv_heads > 0 &&
                      shape.head_dim > 0,
                  ErrorKind::kInvalidInput, "KV cache shape must be positive in every dimension");
  const int64_t floats = shape.n_layers * shape.n_blocks * shape.block_floats();
  k_.assign(static_cast<size_t>(floats), 0.0f);
  v_.assign(static_cast<size_t>(floats), 0.0f);
}

float* KvCache::k_at(int64_t layer, const int32_t* block_table, int64_t pos) {
  const int32_t block = block_table[pos / shape_.block_size];
  DCHECK(block >= 0 && block < shape_.n_blocks);
  return k_block(layer, block) + (pos % shape_.block_size) * shape_.n_kv_heads * shape_.head_dim;
}

float* KvCache::v_at(int64_t layer, const int32_t* block_table, int64_t pos) {
  const int32_t block = block_table[pos / shape_.block_size];
  DCHECK(block >= 0 && block < shape_.n_blocks);
  return v_block(layer, block) + (pos % shape_.block_size) * shape_.n_kv_heads * shape_.head_dim;
}

}  // namespace tessera
