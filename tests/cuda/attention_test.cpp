// Device paged attention (kernels/cuda/attention.h) against ref::attention on random
// Q/K/V: prefill and decode (KV split + merge), GQA/MQA, windows, softcap, offsets,
// shuffled block tables; and the device merge of two partial results.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/stream.h"
#include "kernels/reference.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/kernels/test_util.h"

namespace tessera::kernels::cuda::test {
namespace {

using kernels::test::random_vec;

struct Case {
  const char* name;
  int64_t n_q, n_kv, n_heads, n_kv_heads, head_dim, block_size;
  int64_t q_pos0 = -1;  // -1: the last n_q positions of the KV (prefill / decode)
  bool causal = true;
  int64_t window = 0;
  float softcap = 0;
  int sm_count = -1;    // -1: the device's (KV split when the grid is small); 0: no split
  int64_t kv_pos0 = 0;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class CudaAttention : public ::testing::TestWithParam<Case> {};

// One pool of n_blocks blocks holding the sequence's KV in a shuffled block order.
struct PagedKv {
  int64_t block_floats = 0;
  std::vector<float> k, v;          // [n_blocks][block_size][n_kv_heads][head_dim]
  std::vector<int32_t> table;       // sequence block i -> pool block
};

PagedKv make_kv(std::mt19937& rng, const Case& c) {
  PagedKv p;
  p.block_floats = c.block_size * c.n_kv_heads * c.head_dim;
  const int64_t used = (c.n_kv + c.block_size - 1) / c.block_size;
  const int64_t n_blocks = used + 3;  // spare blocks hold garbage that must not be read
  p.k = random_vec(rng, n_blocks * p.block_floats, -1, 1);
  p.v = random_vec(rng, n_blocks * p.block_floats, -1, 1);
  std::vector<int32_t> ids(static_cast<size_t>(n_blocks));
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  p.table.assign(ids.begin(), ids.begin() + used);
  return p;
}

TEST_P(CudaAttention, MatchesReference) {
  TESSERA_SKIP_WITHOUT_CUDA();
  const Case& c = GetParam();
  std::mt19937 rng(static_cast<uint32_t>(c.n_q * 131 + c.n_kv));
  const PagedKv kv = make_kv(rng, c);
  const int64_t q_width = c.n_heads * c.head_dim;
  const auto q = random_vec(rng, c.n_q * q_width, -1, 1);
  const int64_t q_pos0 = c.q_pos0 >= 0 ? c.q_pos0 : c.n_kv - c.n_q;
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim)) * 3.0f;  // sharper than usual

  std::vector<const float*> kb, vb;
  for (int32_t b : kv.table) kb.push_back(kv.k.data() + b * kv.block_floats), vb.push_back(kv.v.data() + b * kv.block_floats);
  AttentionArgs r;
  r.q = q.data();
  r.n_q = c.n_q;
  r.n_heads = c.n_heads;
  r.n_kv_heads = c.n_kv_heads;
  r.head_dim = c.head_dim;
  r.k_blocks = kb.data();
  r.v_blocks = vb.data();
  r.block_size = c.block_size;
  r.n_kv = c.n_kv;
  r.q_pos0 = q_pos0;
  r.kv_pos0 = c.kv_pos0;
  r.causal = c.causal;
  r.window = c.window;
  r.scale = scale;
  r.softcap = c.softcap;
  std::vector<float> want(q.size()), want_lse(static_cast<size_t>(c.n_q * c.n_heads));
  r.out = want.data();
  r.lse = want_lse.data();
  ref::attention(r);

  Stream s;
  DevicePool pool;
  DeviceBuffer dq = to_device(q), dk = to_device(kv.k), dv = to_device(kv.v), dt = to_device(kv.table);
  DeviceBuffer dout(q.size() * 4), dlse(want_lse.size() * 4);
  DeviceAttentionArgs a;
  a.q = dq.as<float>();
  a.n_q = c.n_q;
  a.n_heads = c.n_heads;
  a.n_kv_heads = c.n_kv_heads;
  a.head_dim = c.head_dim;
  a.k_cache = dk.as<float>();
  a.v_cache = dv.as<float>();
  a.block_table = dt.as<int32_t>();
  a.block_size = c.block_size;
  a.n_kv = c.n_kv;
  a.q_pos0 = q_pos0;
  a.kv_pos0 = c.kv_pos0;
  a.causal = c.causal;
  a.window = c.window;
  a.scale = scale;
  a.softcap = c.softcap;
  a.out = dout.as<float>();
  a.lse = dlse.as<float>();
  const int sms = c.sm_count >= 0 ? c.sm_count : device_info().sm_count;
  attention(a, pool, sms, s.get());
  s.synchronize();
  const auto got = from_device<float>(dout, q.size());
  const auto got_lse = from_device<float>(dlse, want_lse.size());
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= kAttnRel) && ++bad <= 5)  // max|v| = 1
      ADD_FAILURE() << c.name << ": out[" << i << "] = " << got[i] << ", reference " << want[i];
  for (size_t i = 0; i < got_lse.size(); ++i) {
    if (std::isinf(want_lse[i])) {
      EXPECT_TRUE(std::isinf(got_lse[i]) && got_lse[i] < 0) << c.name << ": lse[" << i << "] = " << got_lse[i];
    } else if (!(std::fabs(got_lse[i] - want_lse[i]) <= kAttnLseAbs) && ++bad <= 10) {
      ADD_FAILURE() << c.name << ": lse[" << i << "] = " << got_lse[i] << ", reference " << want_lse[i];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaAttention,
    ::testing::Values(
        Case{"prefill_gqa_hd64", 37, 37, 8, 2, 64, 16},
        Case{"prefill_stories_hd8", 40, 40, 8, 4, 8, 16},
        Case{"prefill_mha_hd128_chunk", 50, 300, 4, 4, 128, 16},        // a later chunk: q at 250..299
        Case{"prefill_llama8b_heads", 64, 64, 32, 8, 128, 16},
        Case{"decode_split_hd128", 1, 1000, 32, 8, 128, 16},            // split over the KV range
        Case{"decode_nosplit_hd128", 1, 1000, 32, 8, 128, 16, -1, true, 0, 0, 0},
        Case{"decode_mqa_hd256", 1, 777, 8, 1, 256, 32},
        Case{"decode_hd96_odd", 3, 515, 6, 3, 96, 8},                   // head_dim not a power of two
        Case{"window_softcap", 45, 200, 4, 2, 64, 16, -1, true, 24, 30.0f},
        Case{"noncausal_cross", 20, 70, 4, 4, 32, 16, 0, false},
        // KV at positions 4..19, queries at 0..7: queries 0-3 see nothing (out 0, lse -inf)
        Case{"rows_with_no_kv", 8, 16, 2, 1, 32, 16, 0, true, 0, 0, -1, 4},
        Case{"rows_with_no_kv_split", 8, 700, 2, 1, 32, 16, 0, true, 0, 0, -1, 4}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(CudaAttentionMerge, TwoHalvesEqualTheWhole) {
  TESSERA_SKIP_WITHOUT_CUDA();
  // Attention over KV [0, 300) equals the merge of [0, 150) and [150, 300) computed
  // separately (kv_pos0 150 for the second half): the ring-attention identity.
  std::mt19937 rng(9);
  const int64_t n_q = 5, n_heads = 4, n_kv_heads = 2, hd = 64, n_kv = 300;
  const auto q = random_vec(rng, n_q * n_heads * hd);
  const auto k = random_vec(rng, n_kv * n_kv_heads * hd), v = random_vec(rng, n_kv * n_kv_heads * hd);
  // One pool of n_kv tokens viewed as blocks of one token (table 0, 1, 2, ...), so a
  // half of the KV is the same view shifted by kv0 tokens.
  std::vector<int32_t> ident(n_kv);
  std::iota(ident.begin(), ident.end(), 0);
  Stream s;
  DevicePool pool;
  DeviceBuffer dq = to_device(q), dk = to_device(k), dv = to_device(v), dt = to_device(ident);
  auto run = [&](int64_t kv0, int64_t kv1, DeviceBuffer& out, DeviceBuffer& lse) {
    DeviceAttentionArgs a;
    a.q = dq.as<float>();
    a.n_q = n_q;
    a.n_heads = n_heads;
    a.n_kv_heads = n_kv_heads;
    a.head_dim = hd;
    a.k_cache = dk.as<float>() + kv0 * n_kv_heads * hd;
    a.v_cache = dv.as<float>() + kv0 * n_kv_heads * hd;
    a.block_table = dt.as<int32_t>();
    a.block_size = 1;
    a.block_stride = n_kv_heads * hd;
    a.n_kv = kv1 - kv0;
    a.q_pos0 = n_kv;  // queries after all keys
    a.kv_pos0 = kv0;
    a.scale = 0.3f;
    a.out = out.as<float>();
    a.lse = lse.as<float>();
    attention(a, pool, 0, s.get());
  };
  const size_t n_out = q.size(), n_lse = n_q * n_heads;
  DeviceBuffer o_all(n_out * 4), l_all(n_lse * 4), o_a(n_out * 4), l_a(n_lse * 4), o_b(n_out * 4), l_b(n_lse * 4);
  run(0, n_kv, o_all, l_all);
  run(0, 150, o_a, l_a);
  run(150, n_kv, o_b, l_b);
  merge_attention(o_a.as<float>(), l_a.as<float>(), o_b.as<float>(), l_b.as<float>(), n_lse, hd, s.get());
  s.synchronize();
  const auto want = from_device<float>(o_all, n_out), got = from_device<float>(o_a, n_out);
  const auto want_l = from_device<float>(l_all, n_lse), got_l = from_device<float>(l_a, n_lse);
  for (size_t i = 0; i < n_out; ++i) ASSERT_NEAR(got[i], want[i], kAttnRel) << i;
  for (size_t i = 0; i < n_lse; ++i) ASSERT_NEAR(got_l[i], want_l[i], kAttnLseAbs) << i;
}

}  // namespace
}  // namespace tessera::kernels::cuda::test
