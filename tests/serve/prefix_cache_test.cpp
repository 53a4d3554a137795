#include "coordinator/prefix_cache.h"

#include <gtest/gtest.h>

#include <numeric>

namespace tessera {
namespace {

TEST(PrefixCache, AllocatesAndFrees) {
  PrefixCache c(4, 2);
  std::vector<int32_t> t;
  ASSERT_TRUE(c.ensure(t, 7));
  EXPECT_EQ(t.size(), 4u);
  EXPECT_EQ(c.available(), 0);
  EXPECT_FALSE(c.ensure(t, 9));
  EXPECT_EQ(t.size(), 4u);
  c.release(t);
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(c.available(), 4);
}

TEST(PrefixCache, MatchesPublishedPrefixAndCountsReferences) {
  PrefixCache c(8, 2);
  const std::vector<int32_t> toks = {1, 2, 3, 4, 5, 6, 7};
  std::vector<int32_t> a;
  ASSERT_TRUE(c.ensure(a, 7));
  uint64_t h = 0;
  for (int i = 0; i < 3; ++i) {
    h = PrefixCache::block_hash(h, std::span<const int32_t>(toks).subspan(i * 2, 2));
    c.publish(a[i], h);
  }
  EXPECT_EQ(c.cached(), 3);
  EXPECT_EQ(c.peek(toks, 10), 3);
  EXPECT_EQ(c.peek(toks, 2), 2);
  std::vector<uint64_t> hashes;
  std::vector<int32_t> b = c.match(toks, 10, &hashes);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0], a[0]);
  EXPECT_EQ(hashes.back(), h);
  // A different second block: only the first matches.
  const std::vector<int32_t> other = {1, 2, 9, 9, 5, 6};
  EXPECT_EQ(c.peek(other, 10), 1);
  c.release(a);
  EXPECT_EQ(c.used(), 3);  // still referenced by b
  c.release(b);
  EXPECT_EQ(c.used(), 0);
  EXPECT_EQ(c.available(), 8);
  EXPECT_EQ(c.cached(), 3);  // cached, evictable
  EXPECT_EQ(c.peek(toks, 10), 3);
}

TEST(PrefixCache, EvictsLeastRecentlyUsedWhenFull) {
  PrefixCache c(3, 1);
  std::vector<int32_t> t1, t2;
  ASSERT_TRUE(c.ensure(t1, 1));
  ASSERT_TRUE(c.ensure(t2, 1));
  const std::vector<int32_t> x = {10}, y = {20};
  c.publish(t1[0], PrefixCache::block_hash(0, x));
  c.publish(t2[0], PrefixCache::block_hash(0, y));
  c.release(t1);  // x is older in the LRU
  c.release(t2);
  EXPECT_EQ(c.cached(), 2);
  std::vector<int32_t> t3;
  ASSERT_TRUE(c.ensure(t3, 2));  // one free block, then evicts x
  EXPECT_EQ(c.evictions(), 1);
  EXPECT_EQ(c.peek(x, 1), 0);
  EXPECT_EQ(c.peek(y, 1), 1);
  EXPECT_GE(c.allocate(), 0);  // evicts y
  EXPECT_EQ(c.evictions(), 2);
  EXPECT_EQ(c.allocate(), -1);  // everything referenced
}

TEST(PrefixCache, HashDependsOnParentAndTokens) {
  const std::vector<int32_t> a = {1, 2}, b = {2, 1};
  EXPECT_NE(PrefixCache::block_hash(0, a), PrefixCache::block_hash(0, b));
  EXPECT_NE(PrefixCache::block_hash(0, a), PrefixCache::block_hash(1, a));
  EXPECT_EQ(PrefixCache::block_hash(5, a), PrefixCache::block_hash(5, a));
}

}  // namespace
}  // namespace tessera
