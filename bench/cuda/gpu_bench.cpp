// gpu_bench: the numbers tools/gpu_check.sh prints (docs/GPU.md, docs/BENCHMARKS.md).
//
//   1. The card's ceilings, measured here: device-to-device copy bandwidth (bytes read +
//      written per second, cudaMemcpyAsync of a large buffer) and the BF16 GEMM rate
//      (cuBLAS, 8192^3 on random data, f32 accumulation).
//   2. The dense decoder (model/llama_cuda.h) at Llama-3-8B shapes with random BF16
//      weights drawn on the device: decode at batch 1 (weight bytes streamed per second
//      against the copy bandwidth) and prefill (FLOP/s against the GEMM rate), with the
//      attention kernel timed alone so the gap can be placed.
//   3. A consistency check at that size: the logits of the last prompt token from one
//      whole prefill and from prefill(P-1) + one decode step (GEMM vs GEMV, one vs two
//      steps of the paged cache) agree to bf16 rounding.
//
// Not a test: prints a table and one JSON line; exits non-zero only on errors.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "common/error.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/random_fill.h"
#include "kernels/cuda/stream.h"
#include "model/llama_cuda.h"

namespace tessera {
namespace {

namespace kc = kernels::cuda;

struct Options {
  int64_t copy_mib = 4096;
  int64_t gemm_n = 8192;
  int64_t prompt = 512;      // prefill length (tokens)
  int64_t decode = 64;       // decode steps timed
  int64_t layers = 32;       // fewer for a quick run
  bool quick = false;        // tiny sizes: checks the program runs, numbers meaningless
};

// Milliseconds per call of fn (enqueued on s), mean of `reps` after `warm` warm-ups.
template <typename Fn>
double time_ms(cudaStream_t s, int warm, int reps, Fn fn) {
  for (int i = 0; i < warm; ++i) fn();
  kc::Event a, b;
  a.record(s);
  for (int i = 0; i < reps; ++i) fn();
  b.record(s);
  b.synchronize();
  return b.elapsed_ms_since(a) / reps;
}

double copy_bandwidth_gbs(const Options& o, cudaStream_t s) {
  const size_t bytes = static_cast<size_t>(o.copy_mib) << 20;
  kc::DeviceBuffer src(bytes), dst(bytes);
  TESSERA_CUDA_CHECK(cudaMemsetAsync(src.get(), 1, bytes, s));
  const double ms = time_ms(s, 3, 10, [&] {
    TESSERA_CUDA_CHECK(cudaMemcpyAsync(dst.get(), src.get(), bytes, cudaMemcpyDeviceToDevice, s));
  });
  return 2.0 * static_cast<double>(bytes) / (ms * 1e-3) / 1e9;  // read + written
}

double bf16_gemm_tflops(const Options& o, cudaStream_t s) {
  const int64_t n = o.gemm_n;
  kc::DeviceBuffer a(static_cast<size_t>(n * n) * 2), b(static_cast<size_t>(n * n) * 2), c(static_cast<size_t>(n * n) * 2);
  kc::fill_uniform(a.get(), DType::kBF16, n * n, -1, 1, 1, s);
  kc::fill_uniform(b.get(), DType::kBF16, n * n, -1, 1, 2, s);
  cublasHandle_t h;
  TESSERA_CUBLAS_CHECK(cublasCreate(&h));
  TESSERA_CUBLAS_CHECK(cublasSetStream(h, s));
  const double ms = time_ms(s, 3, 10, [&] { kc::gemm_bf16_raw(h, n, n, n, a.get(), b.get(), c.get()); });
  cublasDestroy(h);
  return 2.0 * static_cast<double>(n) * n * n / (ms * 1e-3) / 1e12;
}

ModelConfig llama8b(int64_t layers) {
  ModelConfig c;
  c.architecture = "llama";
  c.dim = 4096;
  c.n_layers = layers;
  c.n_heads = 32;
  c.n_kv_heads = 8;
  c.head_dim = 128;
  c.ffn_dim = 14336;
  c.vocab_size = 128256;
  c.max_seq_len = 8192;
  c.norm_eps = 1e-5f;
  c.rope_theta = 500000.0f;
  c.rope_dim = 128;
  c.rope_layout = kernels::RopeLayout::kHalves;
  c.ffn = FfnKind::kSwiGlu;
  return c;
}

ModelConfig quick_config() {
  ModelConfig c = llama8b(2);
  c.dim = 512;
  c.n_heads = 8;
  c.n_kv_heads = 2;
  c.head_dim = 64;
  c.rope_dim = 64;
  c.ffn_dim = 1024;
  c.vocab_size = 1000;
  return c;
}

// FLOPs of a causal prefill of T tokens from position 0 with one output row: 2 per
// weight per token for every layer matrix, QK^T and PV over the causal half, the LM
// head for the one row.
double prefill_flops(const ModelConfig& c, int64_t t) {
  const double per_tok = 2.0 * static_cast<double>(c.n_layers) *
                         (static_cast<double>(c.dim) * (c.q_dim() + 2 * c.kv_dim()) + double(c.q_dim()) * c.dim +
                          3.0 * double(c.dim) * c.ffn_dim);
  const double attn = 4.0 * c.n_layers * double(c.q_dim()) * (double(t) * (t + 1) / 2);
  return per_tok * t + attn + 2.0 * double(c.dim) * c.vocab_size;
}

int run(const Options& o) {
  std::string why;
  if (!kc::device_available(&why)) {
    std::fprintf(stderr, "gpu_bench: %s\n", why.c_str());
    return 77;
  }
  const kc::DeviceInfo dev = kc::device_info();
  std::printf("device: %s, %d SMs, sm_%d%d, %.1f GiB\n", dev.name.c_str(), dev.sm_count, dev.cc_major, dev.cc_minor,
              dev.total_bytes / double(1 << 30));
  kc::Stream stream;
  const double copy_gbs = copy_bandwidth_gbs(o, stream.get());
  const double gemm_tf = bf16_gemm_tflops(o, stream.get());

  const ModelConfig c = o.quick ? quick_config() : llama8b(o.layers);
  const int64_t block = 16;
  const int64_t max_tok = o.prompt + o.decode + 16;
  const KvCacheShape kv{c.n_layers, (max_tok + block - 1) / block, block, c.n_kv_heads, c.head_dim};
  CudaLlamaModel model(c, random_llama_weights(c, DType::kBF16, 42), kv);
  const double wbytes = static_cast<double>(model.weights().streamed_bytes);
  std::vector<int32_t> table(static_cast<size_t>(kv.n_blocks));
  std::iota(table.begin(), table.end(), 0);
  std::vector<int32_t> prompt(static_cast<size_t>(o.prompt));
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 7919 + 1) % c.vocab_size);

  // Prefill: the whole prompt in one step, one output row.
  ForwardSequence pre{prompt, 0, table, 1};
  auto prefill = [&] { model.enqueue(std::span<const ForwardSequence>(&pre, 1)); };
  const double prefill_ms = time_ms(model.stream(), 1, 3, prefill);
  const double prefill_tf = prefill_flops(c, o.prompt) / (prefill_ms * 1e-3) / 1e12;

  // Attention of one layer of that prefill, alone.
  kc::DevicePool pool;
  kc::DeviceBuffer q(static_cast<size_t>(o.prompt * c.q_dim()) * 4), out(q.bytes()), tb(table.size() * 4),
      kcache(static_cast<size_t>(kv.bytes() / 2 / c.n_layers)), vcache(kcache.bytes());
  kc::fill_uniform(q.get(), DType::kF32, o.prompt * c.q_dim(), -1, 1, 7, stream.get());
  kc::fill_uniform(kcache.get(), DType::kF32, kcache.bytes() / 4, -1, 1, 8, stream.get());
  kc::fill_uniform(vcache.get(), DType::kF32, vcache.bytes() / 4, -1, 1, 9, stream.get());
  tb.upload(table.data(), table.size() * 4);
  kc::DeviceAttentionArgs a;
  a.q = q.as<float>();
  a.n_q = o.prompt;
  a.n_heads = c.n_heads;
  a.n_kv_heads = c.n_kv_heads;
  a.head_dim = c.head_dim;
  a.k_cache = kcache.as<float>();
  a.v_cache = vcache.as<float>();
  a.block_table = tb.as<int32_t>();
  a.block_size = block;
  a.n_kv = o.prompt;
  a.scale = 1.0f / std::sqrt(float(c.head_dim));
  a.out = out.as<float>();
  const double attn_ms = time_ms(stream.get(), 2, 10, [&] { kc::attention(a, pool, dev.sm_count, stream.get()); });
  const double attn_tf = 4.0 * double(c.q_dim()) * (double(o.prompt) * (o.prompt + 1) / 2) / (attn_ms * 1e-3) / 1e12;

  // The four products of one layer of that prefill, alone (cuBLAS on bf16-rounded x).
  const CudaLlamaLayerWeights& l0 = model.weights().layers[0];
  kc::Gemm gemm(stream.get(), pool);
  const int64_t widest = std::max<int64_t>(c.ffn_dim, c.q_dim());
  kc::DeviceBuffer gx(static_cast<size_t>(o.prompt * widest) * 4), gy(static_cast<size_t>(o.prompt * 2 * c.ffn_dim) * 4);
  kc::fill_uniform(gx.get(), DType::kF32, o.prompt * widest, -1, 1, 10, stream.get());
  const double gemm_layer_ms = time_ms(stream.get(), 2, 10, [&] {
    gemm.matmul(l0.wqkv, gx.as<float>(), o.prompt, gy.as<float>());
    gemm.matmul(l0.wo, gx.as<float>(), o.prompt, gy.as<float>());
    gemm.matmul(l0.w_gate_up, gx.as<float>(), o.prompt, gy.as<float>());
    gemm.matmul(l0.w_down, gx.as<float>(), o.prompt, gy.as<float>());
  });
  const double layer_params = double(c.dim) * (c.q_dim() + 2 * c.kv_dim()) + double(c.q_dim()) * c.dim +
                              3.0 * double(c.dim) * c.ffn_dim;
  const double gemm_layer_tf = 2.0 * layer_params * o.prompt / (gemm_layer_ms * 1e-3) / 1e12;

  // Decode at batch 1 after the prompt: each step = one forward_greedy (enqueue, argmax,
  // copy the id back, synchronise), as a serving loop runs it.
  std::vector<float> logits_whole(static_cast<size_t>(c.vocab_size)), logits_step(logits_whole.size());
  model.forward(std::span<const ForwardSequence>(&pre, 1), logits_whole.data());
  int32_t tok = prompt.back();
  int64_t pos = o.prompt;
  auto step = [&] {
    ForwardSequence s{std::span<const int32_t>(&tok, 1), pos, table, 1};
    tok = model.forward_greedy(std::span<const ForwardSequence>(&s, 1)).at(0);
    ++pos;
  };
  for (int i = 0; i < 3; ++i) step();
  pos = o.prompt;  // overwrite the warm-up positions
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < o.decode; ++i) step();
  const double decode_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / double(o.decode);
  // Bytes a step reads: the weights plus the KV cache so far (f32 K and V).
  const double kv_bytes = 2.0 * c.n_layers * double(c.kv_dim()) * 4 * (o.prompt + o.decode / 2.0);
  const double decode_gbs = (wbytes + kv_bytes) / (decode_ms * 1e-3) / 1e9;

  // The same decode steps, each a CUDA-graph replay (model/llama_cuda.h).
  model.set_use_graphs(true);
  pos = o.prompt;
  for (int i = 0; i < 3; ++i) step();  // the first is captured
  pos = o.prompt;
  const auto t1 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < o.decode; ++i) step();
  const double graph_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count() / double(o.decode);
  const double graph_gbs = (wbytes + kv_bytes) / (graph_ms * 1e-3) / 1e9;
  const int64_t replays = model.graph_replays();
  model.set_use_graphs(false);

  // Consistency: prefill(P-1) then one decode step gives the whole prefill's last logits.
  ForwardSequence head{std::span<const int32_t>(prompt).first(prompt.size() - 1), 0, table, 0};
  model.forward(std::span<const ForwardSequence>(&head, 1), nullptr);
  ForwardSequence last{std::span<const int32_t>(prompt).last(1), o.prompt - 1, table, 1};
  model.forward(std::span<const ForwardSequence>(&last, 1), logits_step.data());
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < logits_whole.size(); ++i) {
    max_diff = std::max(max_diff, std::fabs(double(logits_whole[i]) - logits_step[i]));
    max_abs = std::max(max_abs, std::fabs(double(logits_whole[i])));
  }
  const bool finite = std::isfinite(max_abs);

  std::printf("\n| what | measured | ceiling (measured) | ratio |\n|---|---|---|---|\n");
  std::printf("| copy bandwidth (D2D, read+write) | %.0f GB/s | | |\n", copy_gbs);
  std::printf("| BF16 GEMM %lld^3 (cuBLAS) | %.0f TFLOP/s | | |\n", static_cast<long long>(o.gemm_n), gemm_tf);
  std::printf("| decode batch 1, %lld layers, ctx %lld (%.2f ms/token) | %.0f GB/s | %.0f GB/s | %.0f%% |\n",
              static_cast<long long>(c.n_layers), static_cast<long long>(o.prompt), decode_ms, decode_gbs, copy_gbs,
              100 * decode_gbs / copy_gbs);
  std::printf("| decode, CUDA graph per step (%.2f ms/token, %lld replays) | %.0f GB/s | %.0f GB/s | %.0f%% |\n",
              graph_ms, static_cast<long long>(replays), graph_gbs, copy_gbs, 100 * graph_gbs / copy_gbs);
  std::printf("| prefill %lld tokens (%.1f ms) | %.0f TFLOP/s | %.0f TFLOP/s | %.0f%% |\n",
              static_cast<long long>(o.prompt), prefill_ms, prefill_tf, gemm_tf, 100 * prefill_tf / gemm_tf);
  std::printf("| prefill products alone, one layer (%.3f ms; x%lld layers = %.1f ms) | %.0f TFLOP/s | %.0f TFLOP/s | %.0f%% |\n",
              gemm_layer_ms, static_cast<long long>(c.n_layers), gemm_layer_ms * c.n_layers, gemm_layer_tf, gemm_tf,
              100 * gemm_layer_tf / gemm_tf);
  std::printf("| prefill attention alone, one layer (%.3f ms; x%lld layers = %.1f ms) | %.1f TFLOP/s | | |\n", attn_ms,
              static_cast<long long>(c.n_layers), attn_ms * c.n_layers, attn_tf);
  std::printf("\nweights streamed per token: %.2f GB; decode-vs-prefill last-row logits: max |diff| %.3g (max |logit| %.3g)%s\n",
              wbytes / 1e9, max_diff, max_abs, finite ? "" : "  NOT FINITE");
  std::printf("{\"device\":\"%s\",\"copy_gbs\":%.1f,\"gemm_bf16_tflops\":%.1f,\"decode_ms\":%.4f,\"decode_gbs\":%.1f,"
              "\"decode_ratio\":%.3f,\"prefill_tokens\":%lld,\"prefill_ms\":%.3f,\"prefill_tflops\":%.1f,"
              "\"prefill_ratio\":%.3f,\"attn_layer_ms\":%.4f,\"consistency_max_diff\":%.4g,"
              "\"decode_graph_ms\":%.4f,\"decode_graph_gbs\":%.1f,\"gemm_layer_ms\":%.4f}\n",
              dev.name.c_str(), copy_gbs, gemm_tf, decode_ms, decode_gbs, decode_gbs / copy_gbs,
              static_cast<long long>(o.prompt), prefill_ms, prefill_tf, prefill_tf / gemm_tf, attn_ms, max_diff,
              graph_ms, graph_gbs, gemm_layer_ms);
  // bf16 rounding of the activations differs between the paths only in summation
  // order: a logit difference above 5% of the largest logit means a real bug.
  if (!finite || max_diff > 0.05 * max_abs + 1e-3) {
    std::fprintf(stderr, "gpu_bench: decode and prefill disagree (max |diff| %g)\n", max_diff);
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  tessera::Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&](const char* name) -> int64_t {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "gpu_bench: %s needs a value\n", name);
        std::exit(2);
      }
      char* end = nullptr;
      const long long v = std::strtoll(argv[++i], &end, 10);
      if (*end != '\0' || v <= 0) {
        std::fprintf(stderr, "gpu_bench: %s wants a positive integer, got '%s'\n", name, argv[i]);
        std::exit(2);
      }
      return v;
    };
    if (a == "--prompt") o.prompt = val("--prompt");
    else if (a == "--decode") o.decode = val("--decode");
    else if (a == "--layers") o.layers = val("--layers");
    else if (a == "--copy-mib") o.copy_mib = val("--copy-mib");
    else if (a == "--gemm-n") o.gemm_n = val("--gemm-n");
    else if (a == "--quick") o.quick = true, o.copy_mib = 64, o.gemm_n = 1024, o.prompt = 64, o.decode = 8;
    else {
      std::fprintf(stderr, "usage: gpu_bench [--quick] [--prompt N] [--decode N] [--layers N] [--copy-mib N] [--gemm-n N]\n");
      return 2;
    }
  }
  try {
    return tessera::run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_bench: %s\n", e.what());
    return 1;
  }
}
