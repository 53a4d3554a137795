// The dense decoder on the GPU (model/llama_cuda.h) against references nobody here
// wrote and against the CPU path: stories260K's float64 logits (tools-generated from
// llama2.c's model, assets/models/stories260K/reference), llama2.c's published greedy
// text, and the CPU model token for token; plus chunked prefill, batching and paged
// block tables equal to one whole prefill.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/json.h"
#include "common/mapped_file.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device.h"
#include "kernels/ops.h"
#include "model/kv_cache.h"
#include "model/llama.h"
#include "model/llama_cuda.h"
#include "model/loader.h"
#include "sharding/plan.h"
#include "tests/cuda/cuda_test_util.h"
#include "tokenizer/loaders.h"
#include "tokenizer/tokenizer.h"

namespace tessera {
namespace {

const std::string kDir = std::string(TESSERA_ASSETS) + "/models/stories260K/";
constexpr int32_t kBos = 1;

struct Stories {
  kernels::ThreadPool pool{2};
  std::unique_ptr<LoadedModel> loaded;
  explicit Stories(const std::string& file) : loaded(load_model(kDir + file, pool)) {}
  LlamaModel& cpu() { return dynamic_cast<LlamaModel&>(*loaded->model); }
  KvCacheShape kv_shape(int64_t n_blocks, int64_t block_size = 16) const {
    const ModelConfig& c = loaded->config;
    return KvCacheShape{c.n_layers, n_blocks, block_size, c.n_kv_heads, c.head_dim};
  }
  std::unique_ptr<CudaLlamaModel> gpu(int64_t n_blocks = 64) {
    return std::make_unique<CudaLlamaModel>(loaded->config, upload_llama_weights(loaded->config, cpu().weights()),
                                            kv_shape(n_blocks));
  }
};

// Greedy decoding from BOS like llama2.c's run.c: `steps` positions in all, stop when
// BOS is produced. next(tokens, pos0) runs one step and returns the argmax.
using StepFn = std::function<int32_t(std::span<const int32_t>, int64_t)>;
std::vector<int32_t> greedy(const StepFn& next, int steps) {
  std::vector<int32_t> out;
  int32_t tok = kBos;
  for (int64_t pos = 0; pos < steps; ++pos) {
    tok = next(std::span<const int32_t>(&tok, 1), pos);
    if (tok == kBos) break;
    out.push_back(tok);
  }
  return out;
}

std::vector<int32_t> identity_table(int64_t n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), 0);
  return t;
}

StepFn cpu_step(LlamaModel& m, KvCache& cache, const std::vector<int32_t>& table) {
  return [&m, &cache, &table](std::span<const int32_t> toks, int64_t pos0) {
    ForwardSequence s{toks, pos0, table, 1};
    std::vector<float> logits(static_cast<size_t>(m.logits_cols()));
    m.forward(std::span<const ForwardSequence>(&s, 1), cache, logits.data());
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  };
}

// The text llama2.c prints for a greedy run: every piece after BOS (SentencePiece's
// leading space of the first piece dropped), as tessera's StreamDecoder renders it.
std::string render(const std::vector<int32_t>& ids) {
  const auto tok = load_tokenizer(kDir + "tok512.bin");
  StreamDecoder dec(*tok);
  std::string text = dec.push(kBos);
  for (int32_t id : ids) text += dec.push(id);
  return text + dec.finish();
}

// Runs without a GPU: checks this file's greedy driver and renderer on the CPU model
// against llama2.c's published text, so the GPU test below compares like with like.
TEST(Stories260KGreedyDriver, CpuReproducesPublishedText) {
  Stories st("stories260K.bin");
  KvCache cache(st.kv_shape(64));
  const auto table = identity_table(64);
  const auto ids = greedy(cpu_step(st.cpu(), cache, table), 200);
  EXPECT_EQ(render(ids), read_text_file(kDir + "reference/greedy_n200.txt"));
}

class Stories260KCuda : public ::testing::TestWithParam<const char*> {};

TEST_P(Stories260KCuda, LogitsMatchFloat64ReferenceAndCpu) {
  TESSERA_SKIP_WITHOUT_CUDA();
  const Json meta = Json::parse(read_text_file(kDir + "reference/logits_greedy_64.json"), "logits_greedy_64.json");
  std::vector<int32_t> ids;
  for (const Json& v : meta.at("input_ids").as_array()) ids.push_back(static_cast<int32_t>(v.as_int()));
  const int64_t vocab = meta.at("vocab").as_int();
  MappedFile ref(kDir + "reference/logits_greedy_64.f32");
  ASSERT_EQ(ref.size(), ids.size() * vocab * 4);
  const float* expected = reinterpret_cast<const float*>(ref.data());

  Stories st(GetParam());
  auto gpu = st.gpu();
  const auto table = identity_table(8);
  const int64_t n = static_cast<int64_t>(ids.size());
  ForwardSequence s{ids, 0, table, n};
  std::vector<float> got(static_cast<size_t>(n * vocab)), cpu(got.size());
  gpu->forward(std::span<const ForwardSequence>(&s, 1), got.data());
  KvCache cache(st.kv_shape(8));
  st.cpu().forward(std::span<const ForwardSequence>(&s, 1), cache, cpu.data());
  double err_ref = 0, err_cpu = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    err_ref = std::max(err_ref, std::fabs(double(got[i]) - expected[i]));
    err_cpu = std::max(err_cpu, std::fabs(double(got[i]) - cpu[i]));
  }
  EXPECT_LT(err_ref, 1e-4) << "max |GPU - float64 reference|";
  EXPECT_LT(err_cpu, 1e-4) << "max |GPU - CPU|";
  RecordProperty("max_err_vs_float64", std::to_string(err_ref));
}

TEST_P(Stories260KCuda, GreedyTextIdenticalToCpuAndPublished) {
  TESSERA_SKIP_WITHOUT_CUDA();
  Stories st(GetParam());
  auto gpu = st.gpu();
  // A shuffled block table: the device cache must follow it like the host one does.
  std::vector<int32_t> table = identity_table(64);
  std::shuffle(table.begin(), table.end(), std::mt19937(3));
  const StepFn gpu_step = [&](std::span<const int32_t> toks, int64_t pos0) {
    ForwardSequence s{toks, pos0, table, 1};
    return gpu->forward_greedy(std::span<const ForwardSequence>(&s, 1)).at(0);
  };
  // The same decoding with every decode step a CUDA-graph replay.
  auto gpu_graphs = st.gpu();
  gpu_graphs->set_use_graphs(true);
  const StepFn graph_step = [&](std::span<const int32_t> toks, int64_t pos0) {
    ForwardSequence s{toks, pos0, table, 1};
    return gpu_graphs->forward_greedy(std::span<const ForwardSequence>(&s, 1)).at(0);
  };
  KvCache cache(st.kv_shape(64));
  const auto cpu_table = identity_table(64);
  for (int steps : {200, 256}) {
    const auto want = greedy(cpu_step(st.cpu(), cache, cpu_table), steps);
    const auto got = greedy(gpu_step, steps);
    EXPECT_EQ(got, want) << steps << " steps";
    const std::string ref_file = kDir + "reference/greedy_n" + std::to_string(steps) + ".txt";
    EXPECT_EQ(render(got), read_text_file(ref_file));
    EXPECT_EQ(greedy(graph_step, steps), want) << steps << " steps, CUDA graphs";
  }
  EXPECT_GT(gpu_graphs->graph_replays(), 300) << "decode steps were not replayed from the graph";
}

TEST_P(Stories260KCuda, ChunkedAndBatchedPrefillEqualOneStep) {
  TESSERA_SKIP_WITHOUT_CUDA();
  Stories st(GetParam());
  const int64_t vocab = st.loaded->config.vocab_size;
  std::mt19937 rng(5);
  std::vector<int32_t> a(45), b(30);
  for (auto& t : a) t = static_cast<int32_t>(rng() % vocab);
  for (auto& t : b) t = static_cast<int32_t>(rng() % vocab);
  a[0] = b[0] = kBos;

  // Whole prompts, one at a time: logits of every position.
  auto whole = [&](const std::vector<int32_t>& p) {
    auto gpu = st.gpu(16);
    const auto table = identity_table(4);
    ForwardSequence s{p, 0, table, static_cast<int64_t>(p.size())};
    std::vector<float> l(p.size() * vocab);
    gpu->forward(std::span<const ForwardSequence>(&s, 1), l.data());
    return l;
  };
  const auto la = whole(a), lb = whole(b);

  // Both prompts in one batch, in chunks of 7 / 5 tokens, over interleaved blocks.
  auto gpu = st.gpu(16);
  const std::vector<int32_t> ta = {9, 2, 14}, tb = {0, 11};
  std::vector<float> ga, gb;
  for (size_t i = 0, j = 0; i < a.size() || j < b.size(); i += 7, j += 5) {
    std::vector<ForwardSequence> batch;
    const size_t na = i < a.size() ? std::min<size_t>(7, a.size() - i) : 0;
    const size_t nb = j < b.size() ? std::min<size_t>(5, b.size() - j) : 0;
    if (na) batch.push_back({std::span<const int32_t>(a).subspan(i, na), static_cast<int64_t>(i), ta, static_cast<int64_t>(na)});
    if (nb) batch.push_back({std::span<const int32_t>(b).subspan(j, nb), static_cast<int64_t>(j), tb, static_cast<int64_t>(nb)});
    std::vector<float> l((na + nb) * vocab);
    gpu->forward(batch, l.data());
    ga.insert(ga.end(), l.begin(), l.begin() + na * vocab);
    gb.insert(gb.end(), l.begin() + na * vocab, l.end());
  }
  ASSERT_EQ(ga.size(), la.size());
  ASSERT_EQ(gb.size(), lb.size());
  double err = 0;
  for (size_t i = 0; i < la.size(); ++i) err = std::max(err, std::fabs(double(ga[i]) - la[i]));
  for (size_t i = 0; i < lb.size(); ++i) err = std::max(err, std::fabs(double(gb[i]) - lb[i]));
  // cuBLAS may pick other kernels (tiles, split-K) for other row counts: f32 order only.
  EXPECT_LT(err, 1e-4);
}

// Requantised copy of a matrix (rows contiguous), kept alive by `store`.
kernels::WeightMatrix requantise(const kernels::WeightMatrix& w, DType t, std::vector<std::vector<uint8_t>>& store) {
  const int64_t rb = dtype_row_bytes(t, w.cols);
  std::vector<float> row(static_cast<size_t>(w.cols));
  std::vector<uint8_t> out(static_cast<size_t>(w.rows * rb));
  const int64_t src_stride = w.row_stride ? w.row_stride : dtype_row_bytes(w.dtype, w.cols);
  for (int64_t r = 0; r < w.rows; ++r) {
    kernels::dequantize_row(w.dtype, static_cast<const uint8_t*>(w.data) + r * src_stride, row.data(), w.cols);
    kernels::quantize_row(t, row.data(), out.data() + r * rb, w.cols);
  }
  store.push_back(std::move(out));
  kernels::WeightMatrix q = w;
  q.dtype = t;
  q.data = store.back().data();
  q.row_stride = rb;
  q.act_rounding = kernels::ActRounding::kWeightType;  // the GPU's rounding of x (kernels/cuda/gemm.h)
  return q;
}

TEST_P(Stories260KCuda, MixedDtypesUnfusedMatchCpu) {
  TESSERA_SKIP_WITHOUT_CUDA();
  // wk F16, wv BF16, wo F16, w_up Q8_0 (gate stays F32): Q/K/V and gate/up cannot be
  // fused, so the separate products into strided outputs run, through every dtype
  // path. The CPU model on the very same weights is the reference.
  Stories st(GetParam());
  std::vector<std::vector<uint8_t>> store;
  LlamaWeights w = st.cpu().weights();
  for (LlamaLayerWeights& lw : w.layers) {
    lw.wk = requantise(lw.wk, DType::kF16, store);
    lw.wv = requantise(lw.wv, DType::kBF16, store);
    lw.wo = requantise(lw.wo, DType::kF16, store);
    lw.w_up = requantise(lw.w_up, DType::kQ8_0, store);
  }
  const ModelConfig& c = st.loaded->config;
  CudaLlamaWeights dw = upload_llama_weights(c, w);
  ASSERT_EQ(dw.layers[0].wqkv.data, nullptr);
  ASSERT_EQ(dw.layers[0].w_gate_up.data, nullptr);
  CudaLlamaModel gpu(c, std::move(dw), st.kv_shape(8));
  LlamaModel cpu(c, st.loaded->plan, w, st.pool);
  std::vector<int32_t> ids(40);
  std::mt19937 rng(8);
  for (auto& t : ids) t = static_cast<int32_t>(rng() % c.vocab_size);
  const auto table = identity_table(8);
  ForwardSequence s{ids, 0, table, static_cast<int64_t>(ids.size())};
  std::vector<float> got(ids.size() * c.vocab_size), want(got.size());
  gpu.forward(std::span<const ForwardSequence>(&s, 1), got.data());
  KvCache cache(st.kv_shape(8));
  cpu.forward(std::span<const ForwardSequence>(&s, 1), cache, want.data());
  double err = 0;
  for (size_t i = 0; i < got.size(); ++i) err = std::max(err, std::fabs(double(got[i]) - want[i]));
  EXPECT_LT(err, 1e-3) << "max |GPU - CPU| logits, mixed dtypes";
}

TEST_P(Stories260KCuda, BadInputGetsAClearError) {
  TESSERA_SKIP_WITHOUT_CUDA();
  Stories st(GetParam());
  auto gpu = st.gpu(4);
  const auto table = identity_table(4);
  const std::vector<int32_t> bad = {kBos, 99999};
  ForwardSequence s{bad, 0, table, 1};
  try {
    gpu->forward(std::span<const ForwardSequence>(&s, 1), nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("99999"), std::string::npos) << e.what();
  }
  // A cache whose shape does not fit the model.
  KvCacheShape wrong = st.kv_shape(4);
  wrong.n_kv_heads += 1;
  auto make = [&] { CudaLlamaModel m(st.loaded->config, upload_llama_weights(st.loaded->config, st.cpu().weights()), wrong); };
  EXPECT_THROW(make(), Error);
}

// The benchmark's model family at a small size: random BF16 weights drawn on the
// device (random_llama_weights), fused Q/K/V and gate/up, GQA, RoPE in halves with
// theta 500000 (Llama 3), copied back to the host and run by the CPU model as the
// reference. Both round the activations to bf16 before each product, so they differ
// only where an f32 value sits on a bf16 rounding boundary: logits agree to ~1e-3.
TEST(RandomBf16LlamaCuda, PrefillAndDecodeMatchCpu) {
  TESSERA_SKIP_WITHOUT_CUDA();
  ModelConfig c;
  c.architecture = "llama";
  c.dim = 256;
  c.n_layers = 3;
  c.n_heads = 8;
  c.n_kv_heads = 2;
  c.head_dim = 32;
  c.ffn_dim = 512;
  c.vocab_size = 1000;
  c.max_seq_len = 256;
  c.rope_theta = 500000.0f;
  c.rope_dim = 32;
  c.rope_layout = kernels::RopeLayout::kHalves;
  c.ffn = FfnKind::kSwiGlu;
  CudaLlamaWeights dw = random_llama_weights(c, DType::kBF16, 11);
  ASSERT_NE(dw.layers[0].wqkv.data, nullptr);
  ASSERT_NE(dw.layers[0].w_gate_up.data, nullptr);

  // Host copies of every device tensor, as the CPU model's weight views.
  std::vector<std::vector<uint8_t>> store;
  auto host_matrix = [&](const kernels::cuda::DeviceMatrix& m) {
    std::vector<uint8_t> h(static_cast<size_t>(m.rows * m.row_stride));
    TESSERA_CUDA_CHECK(cudaMemcpy(h.data(), m.data, h.size(), cudaMemcpyDeviceToHost));
    store.push_back(std::move(h));
    kernels::WeightMatrix w;
    w.dtype = m.dtype;
    w.rows = m.rows;
    w.cols = m.cols;
    w.data = store.back().data();
    w.row_stride = m.row_stride;
    w.act_rounding = kernels::ActRounding::kWeightType;
    return w;
  };
  auto host_vector = [&](const float* p, int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    TESSERA_CUDA_CHECK(cudaMemcpy(v.data(), p, v.size() * 4, cudaMemcpyDeviceToHost));
    return v;
  };
  LlamaWeights hw;
  hw.token_embd = host_matrix(dw.token_embd);
  for (const CudaLlamaLayerWeights& l : dw.layers) {
    LlamaLayerWeights lw;
    lw.attn_norm = host_vector(l.attn_norm, c.dim);
    lw.wq = host_matrix(l.wq);
    lw.wk = host_matrix(l.wk);
    lw.wv = host_matrix(l.wv);
    lw.wo = host_matrix(l.wo);
    lw.ffn_norm = host_vector(l.ffn_norm, c.dim);
    lw.w_gate = host_matrix(l.w_gate);
    lw.w_up = host_matrix(l.w_up);
    lw.w_down = host_matrix(l.w_down);
    hw.layers.push_back(std::move(lw));
  }
  hw.output_norm = host_vector(dw.output_norm, c.dim);
  hw.output = host_matrix(dw.output);

  const KvCacheShape kv{c.n_layers, 4, 16, c.n_kv_heads, c.head_dim};
  CudaLlamaModel gpu(c, std::move(dw), kv);
  kernels::ThreadPool pool(2);
  LlamaModel cpu(c, full_plan(c), std::move(hw), pool);
  KvCache cache(kv);

  std::vector<int32_t> ids(30);
  std::mt19937 rng(4);
  for (auto& t : ids) t = static_cast<int32_t>(rng() % c.vocab_size);
  const std::vector<int32_t> table = {2, 0, 3, 1};
  auto compare = [&](std::span<const int32_t> toks, int64_t pos0, int64_t n_out, const char* what) {
    ForwardSequence s{toks, pos0, table, n_out};
    std::vector<float> g(static_cast<size_t>(n_out * c.vocab_size)), w(g.size());
    gpu.forward(std::span<const ForwardSequence>(&s, 1), g.data());
    cpu.forward(std::span<const ForwardSequence>(&s, 1), cache, w.data());
    double err = 0, amax = 0;
    for (size_t i = 0; i < g.size(); ++i) {
      err = std::max(err, std::fabs(double(g[i]) - w[i]));
      amax = std::max(amax, std::fabs(double(w[i])));
    }
    EXPECT_LT(err, 2e-2 * amax + 1e-3) << what << ": max |GPU - CPU| " << err << ", max |logit| " << amax;
  };
  // Prefill of 29 tokens (cuBLAS GEMM), then one decode step (the own GEMV) at 29.
  compare(std::span<const int32_t>(ids).first(29), 0, 29, "prefill");
  compare(std::span<const int32_t>(ids).last(1), 29, 1, "decode");

  // Decode steps replayed from a CUDA graph equal the same steps enqueued one by one
  // (only the KV split differs: f32 summation order). Positions 29..59 cross blocks.
  std::vector<float> plain, graphed;
  for (bool graphs : {false, true}) {
    gpu.set_use_graphs(graphs);
    std::vector<float>& out = graphs ? graphed : plain;
    for (int64_t pos = 29; pos < 60; ++pos) {
      const int32_t tok = ids[pos % ids.size()];
      ForwardSequence s{std::span<const int32_t>(&tok, 1), pos, table, 1};
      std::vector<float> l(static_cast<size_t>(c.vocab_size));
      gpu.forward(std::span<const ForwardSequence>(&s, 1), l.data());
      out.insert(out.end(), l.begin(), l.end());
    }
  }
  EXPECT_GE(gpu.graph_replays(), 29);
  double gerr = 0;
  for (size_t i = 0; i < plain.size(); ++i) gerr = std::max(gerr, std::fabs(double(plain[i]) - graphed[i]));
  EXPECT_LT(gerr, 1e-4) << "graph replay vs plain decode";
}

INSTANTIATE_TEST_SUITE_P(BothFormats, Stories260KCuda, ::testing::Values("stories260K.bin", "stories260K.gguf"),
                         [](const auto& info) { return std::string(info.param).substr(12) == "bin" ? "bin" : "gguf"; });

}  // namespace
}  // namespace tessera
