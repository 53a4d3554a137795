#include "coordinator/prefix_cache.h"

#include <algorithm>

#include <glog/logging.h>

#include "common/error.h"

namespace tessera {

PrefixCache::PrefixCache(int64_t n_blocks, int64_t block_size)
    : n_blocks_(n_blocks), block_size_(block_size), blocks_(static_cast<size_t>(n_blocks)) {
  TESSERA_REQUIRE(n_blocks > 0 && n_blocks < (int64_t{1} << 31), ErrorKind::kInvalidInput, "KV block count ",
                  n_blocks, " out of range");
  TESSERA_REQUIRE(block_size > 0, ErrorKind::kInvalidInput, "KV block size must be > 0");
  free_.reserve(static_cast<size_t>(n_blocks));
  for (int64_t b = n_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

uint64_t PrefixCache::block_hash(uint64_t parent, std::span<const int32_t> tokens) {
  // FNV-1a over the parent hash and the token ids, then a final mix (splitmix64).
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix_byte = [&](uint8_t b) { h = (h ^ b) * 0x100000001b3ull; };
  for (int i = 0; i < 8; ++i) mix_byte(static_cast<uint8_t>(parent >> (8 * i)));
  for (int32_t t : tokens)
    for (int i = 0; i < 4; ++i) mix_byte(static_cast<uint8_t>(static_cast<uint32_t>(t) >> (8 * i)));
  h += 0x9e3779b97f4a7c15ull;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

int64_t PrefixCache::peek(std::span<const int32_t> tokens, int64_t max_blocks) const {
  uint64_t h = 0;
  int64_t n = 0;
  for (; n < max_blocks && (n + 1) * block_size_ <= static_cast<int64_t>(tokens.size()); ++n) {
    h = block_hash(h, tokens.subspan(static_cast<size_t>(n * block_size_), static_cast<size_t>(block_size_)));
    if (!by_hash_.count(h)) break;
  }
  return n;
}

std::vector<int32_t> PrefixCache::match(std::span<const int32_t> tokens, int64_t max_blocks,
                                        std::vector<uint64_t>* hashes) {
  std::vector<int32_t> out;
  uint64_t h = 0;
  for (int64_t n = 0; n < max_blocks && (n + 1) * block_size_ <= static_cast<int64_t>(tokens.size()); ++n) {
    h = block_hash(h, tokens.subspan(static_cast<size_t>(n * block_size_), static_cast<size_t>(block_size_)));
    auto it = by_hash_.find(h);
    if (it == by_hash_.end()) break;
    Block& b = blocks_[static_cast<size_t>(it->second)];
    if (b.refs == 0) lru_.erase(b.lru);
    ++b.refs;
    ++hits_;
    out.push_back(it->second);
    if (hashes) hashes->push_back(h);
  }
  return out;
}

int32_t PrefixCache::allocate() {
  int32_t id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else if (!lru_.empty()) {
    id = lru_.front();
    lru_.pop_front();
    Block& b = blocks_[static_cast<size_t>(id)];
    by_hash_.erase(b.hash);
    b.has_hash = false;
    ++evictions_;
  } else {
    return -1;
  }
  blocks_[static_cast<size_t>(id)].refs = 1;
  return id;
}

bool PrefixCache::ensure(std::vector<int32_t>& table, int64_t n_tokens) {
  const int64_t need = (n_tokens + block_size_ - 1) / block_size_ - static_cast<int64_t>(table.size());
  if (need <= 0) return true;
  if (need > available()) return false;
  for (int64_t i = 0; i < need; ++i) table.push_back(allocate());
  return true;
}

void PrefixCache::publish(int32_t block, uint64_t hash) {
  Block& b = blocks_[static_cast<size_t>(block)];
  CHECK_GT(b.refs, 0) << "publishing unreferenced block " << block;
  if (b.has_hash || by_hash_.count(hash)) return;
  b.has_hash = true;
  b.hash = hash;
  by_hash_.emplace(hash, block);
}

void PrefixCache::release(std::vector<int32_t>& table) {
  for (auto it = table.rbegin(); it != table.rend(); ++it) {
    Block& b = blocks_[static_cast<size_t>(*it)];
    CHECK_GT(b.refs, 0) << "releasing free block " << *it;
    if (--b.refs > 0) continue;
    if (b.has_hash) {
      lru_.push_back(*it);
      b.lru = std::prev(lru_.end());
    } else {
      free_.push_back(*it);
    }
  }
  table.clear();
}

void PrefixCache::shrink(std::vector<int32_t>& table, int64_t n_tokens) {
  const auto keep = static_cast<size_t>((std::max<int64_t>(n_tokens, 0) + block_size_ - 1) / block_size_);
  if (table.size() <= keep) return;
  std::vector<int32_t> tail(table.begin() + static_cast<std::ptrdiff_t>(keep), table.end());
  table.resize(keep);
  release(tail);
}

}  // namespace tessera
