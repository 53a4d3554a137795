// tessera bench: end-to-end prefill and decode speed on a checkpoint, stated against
// the machine's limits measured in the same run (docs/BENCHMARKS.md).
//
// Prefill FLOPs count the matmuls (2 x weights per token, LM head once) plus causal
// attention (4 x head_dim x heads x visible positions per layer). Decode bytes count
// the weights one step streams plus the KV cache it reads at the mean position.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <vector>

#include "cli/args.h"
#include "cli/cluster.h"
#include "cli/commands.h"
#include "cli/machine_limits.h"
#include "cli/model_flags.h"
#include "cli/moe_report.h"
#include "common/error.h"
#include "common/json.h"
#include "coordinator/batch_generator.h"
#include "coordinator/generator.h"
#include "coordinator/rpc_step_runner.h"
#include "coordinator/step_runner.h"
#include "model/loader.h"
#include "worker/worker.h"

namespace tessera::cli {

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Mean step latency split into the slowest rank's compute (its communication and
// pipeline waits included) and the control plane's round trip; only for a
// distributed runner.
void print_time_split(const StepRunner& runner) {
  const auto* rpc = dynamic_cast<const RpcStepRunner*>(&runner);
  if (rpc == nullptr || rpc->time_split().steps == 0) return;
  const StepTimeSplit& t = rpc->time_split();
  const double n = static_cast<double>(t.steps);
  std::printf("step      %.3f ms mean latency over %lld steps: compute %.3f ms (of which communication and "
              "pipeline waits %.3f ms), control plane %.3f ms\n",
              1e3 * t.wall / n, static_cast<long long>(t.steps), 1e3 * t.compute / n, 1e3 * t.collectives / n,
              1e3 * t.rpc / n);
}

}  // namespace

int bench_with(const Args& a, StepRunner& runner, uint64_t weight_bytes, uint64_t streamed_bytes, int ranks);

int run_bench(int argc, char** argv) {
  Args a("bench", "Measures prefill and decode speed (greedy, one sequence) and reports tokens/s, achieved "
                  "GFLOP/s (prefill) and GB/s (decode) next to the machine's memory bandwidth and FMA peak, "
                  "measured in the same run.");
  declare_model_flags(a);
  a.flag("prompt-tokens", "N", "prompt length (random token ids, fixed seed)", "128");
  a.flag("gen-tokens", "N", "tokens to decode after the prompt", "64");
  a.flag("repeat", "N", "repetitions; the median is reported", "3");
  a.flag("prefill-chunk", "N", "prompt tokens per prefill step; 0 = the whole prompt in one step", "0");
  a.flag("no-limits", "", "skip measuring the machine's limits");
  a.flag("json", "", "print one JSON object instead of the table");
  a.flag("sequences", "S", "decode S sequences together (throughput mode) instead of one", "1");
  a.flag("micro-batches", "M", "throughput mode: micro-batches kept in flight (>= pp fills a pipeline)", "1");
  if (!a.parse(argc, argv, 2)) {
    std::cout << a.help();
    return 0;
  }
  TESSERA_REQUIRE(a.has("model"), ErrorKind::kInvalidInput, "tessera bench: --model PATH is required");
  const int64_t n_prompt = a.int64("prompt-tokens"), n_gen = a.int64("gen-tokens"), repeat = a.int64("repeat");
  TESSERA_REQUIRE(n_prompt >= 1 && n_gen >= 2 && repeat >= 1, ErrorKind::kInvalidInput,
                  "need --prompt-tokens >= 1, --gen-tokens >= 2, --repeat >= 1");
  WorkerOptions wo = worker_options_from(a);
  const int64_t n_seq = a.int64("sequences");
  TESSERA_REQUIRE(n_seq >= 1 && a.int64("micro-batches") >= 1, ErrorKind::kInvalidInput,
                  "--sequences and --micro-batches must be >= 1");
  // Room for every sequence, each rounded up to whole blocks.
  const int64_t per_seq = (n_prompt + n_gen + wo.kv_block_size - 1) / wo.kv_block_size * wo.kv_block_size;
  if (wo.max_kv_tokens == 0) wo.max_kv_tokens = n_seq * per_seq;
  TESSERA_REQUIRE(parallel_config_from(a).cp == 1, ErrorKind::kUnsupported, "tessera bench does not run with --cp > 1 "
                  "yet; context parallelism runs through tessera generate and score (docs/CONTEXT_PARALLEL.md)");
  if (launched_distributed(parallel_config_from(a))) {
    ClusterOptions co = cluster_options_from(a);
    co.print_layout = true;
    co.load.kv_blocks = static_cast<int32_t>((wo.max_kv_tokens + wo.kv_block_size - 1) / wo.kv_block_size);
    return run_cluster(nullptr, nullptr, co, [&](StepRunner& runner, const Topology& topo) {
      // Byte accounting of the whole model: mapping it binds views, it reads no weights.
      kernels::ThreadPool pool(1);
      auto whole = load_model(a.str("model"), pool);
      const int rc = bench_with(a, runner, whole->weight_bytes, whole->streamed_bytes, topo.world_size());
      if (rc == 0 && !a.on("json")) print_moe_report(runner, nullptr);
      return rc;
    });
  }
  Worker worker(a.str("model"), wo);
  LocalStepRunner runner(worker);
  const int rc = bench_with(a, runner, worker.weight_bytes(), worker.streamed_bytes(), 1);
  if (rc == 0 && !a.on("json")) print_moe_report(runner, &worker.model());
  return rc;
}

// Throughput mode: S sequences in M micro-batches kept in flight.
int bench_batch(const Args& a, StepRunner& runner, int ranks) {
  const int64_t n_prompt = a.int64("prompt-tokens"), n_gen = a.int64("gen-tokens"), repeat = a.int64("repeat");
  const int64_t n_seq = a.int64("sequences");
  const ModelConfig& c = runner.config();
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(n_seq));
  uint64_t rng = 42;
  for (auto& p : prompts) {
    p.resize(static_cast<size_t>(n_prompt));
    for (auto& t : p) t = static_cast<int32_t>(3 + rng_next_u32(rng) % static_cast<uint32_t>(c.vocab_size - 3));
  }
  KvBlockAllocator allocator(runner.kv_blocks());
  BatchOptions bo;
  bo.max_new_tokens = n_gen;
  bo.micro_batches = static_cast<int>(a.int64("micro-batches"));
  std::vector<double> decode, prefill;
  for (int64_t r = 0; r < repeat + 1; ++r) {
    BatchStats st;
    generate_batch(runner, allocator, prompts, bo, &st);
    if (r == 0) continue;
    decode.push_back(st.decode_tokens_per_second());
    prefill.push_back(static_cast<double>(st.prompt_tokens) / st.prefill_seconds);
  }
  const double decode_tps = median(decode), prefill_tps = median(prefill);
  if (a.on("json")) {
    Json j = Json::object();
    j.set("model", Json::string(a.str("model")));
    j.set("ranks", Json::integer(ranks));
    j.set("threads", Json::integer(a.int64("threads")));
    j.set("sequences", Json::integer(n_seq));
    j.set("micro_batches", Json::integer(bo.micro_batches));
    j.set("prefill_tok_s", Json::number(prefill_tps));
    j.set("decode_tok_s", Json::number(decode_tps));
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::printf("model     %s\n          %s\n", a.str("model").c_str(), c.summary().c_str());
  std::printf("ranks     %d x %lld threads; %lld sequences in %d micro-batches; prompt %lld, generate %lld; "
              "median of %lld\n", ranks, static_cast<long long>(a.int64("threads")), static_cast<long long>(n_seq),
              bo.micro_batches, static_cast<long long>(n_prompt), static_cast<long long>(n_gen),
              static_cast<long long>(repeat));
  std::printf("prefill   %.1f tokens/s (all prompts)\ndecode    %.1f tokens/s (all sequences together)\n",
              prefill_tps, decode_tps);
  print_time_split(runner);
  return 0;
}

int bench_with(const Args& a, StepRunner& runner, uint64_t weight_bytes, uint64_t streamed_bytes, int ranks) {
  if (a.int64("sequences") > 1) return bench_batch(a, runner, ranks);
  const int64_t n_prompt = a.int64("prompt-tokens"), n_gen = a.int64("gen-tokens"), repeat = a.int64("repeat");
  const ModelConfig& c = runner.config();
  TESSERA_REQUIRE(n_prompt + n_gen <= c.max_seq_len, ErrorKind::kInvalidInput, "prompt + generation (",
                  n_prompt + n_gen, ") exceed the model's context of ", c.max_seq_len);

  std::vector<int32_t> prompt(static_cast<size_t>(n_prompt));
  uint64_t rng = 42;
  for (auto& t : prompt) t = static_cast<int32_t>(3 + rng_next_u32(rng) % static_cast<uint32_t>(c.vocab_size - 3));

  Generator gen(runner);
  GenerateOptions opt;
  opt.max_new_tokens = n_gen;
  opt.prefill_chunk = a.int64("prefill-chunk") > 0 ? a.int64("prefill-chunk") : n_prompt;
  std::vector<double> prefill, decode;
  for (int64_t r = 0; r < repeat + 1; ++r) {  // the first run warms caches and page mappings
    GenerateStats s = gen.generate(prompt, opt, [](int32_t) { return true; });
    if (r == 0) continue;
    prefill.push_back(s.prefill_tokens_per_second());
    decode.push_back(s.decode_tokens_per_second());
  }
  const double prefill_tps = median(prefill), decode_tps = median(decode);

  // Work per token.
  const double layer_params = static_cast<double>(c.n_layers) *
      (2.0 * c.dim * c.q_dim() + 2.0 * c.dim * c.kv_dim() +
       (c.ffn == FfnKind::kSwiGlu || c.ffn == FfnKind::kGeGlu ? 3.0 : 2.0) * c.dim * c.ffn_dim);
  const double attn_flops_prefill = 4.0 * c.n_layers * c.q_dim() * (n_prompt * (n_prompt + 1) / 2.0);
  const double prefill_flops = 2.0 * layer_params * n_prompt + 2.0 * c.dim * c.vocab_size + attn_flops_prefill;
  const double prefill_gflops = prefill_flops / (n_prompt / prefill_tps) / 1e9;
  const double mean_pos = n_prompt + n_gen / 2.0;
  const double kv_bytes = 2.0 * 4 * c.n_layers * c.kv_dim() * mean_pos;
  const double decode_gbps = (static_cast<double>(streamed_bytes) + kv_bytes) * decode_tps / 1e9;

  MachineLimits lim;
  if (!a.on("no-limits")) {
    kernels::ThreadPool pool(static_cast<int>(a.int64("threads")));
    lim = measure_machine_limits(pool);
  }

  const auto* rpc_runner = dynamic_cast<const RpcStepRunner*>(&runner);
  if (a.on("json")) {
    Json j = Json::object();
    j.set("model", Json::string(a.str("model")));
    j.set("threads", Json::integer(a.int64("threads")));
    j.set("prompt_tokens", Json::integer(n_prompt));
    j.set("gen_tokens", Json::integer(n_gen));
    j.set("weight_bytes", Json::integer(static_cast<int64_t>(weight_bytes)));
    j.set("prefill_tok_s", Json::number(prefill_tps));
    j.set("decode_tok_s", Json::number(decode_tps));
    j.set("prefill_gflops", Json::number(prefill_gflops));
    j.set("decode_gbps", Json::number(decode_gbps));
    j.set("machine_read_gbps", Json::number(lim.read_gbps));
    j.set("machine_fma_gflops", Json::number(lim.fma_gflops));
    j.set("ranks", Json::integer(ranks));
    if (rpc_runner != nullptr && rpc_runner->time_split().steps > 0) {
      const StepTimeSplit& t = rpc_runner->time_split();
      j.set("step_ms", Json::number(1e3 * t.wall / t.steps));
      j.set("step_compute_ms", Json::number(1e3 * t.compute / t.steps));
      j.set("step_collectives_ms", Json::number(1e3 * t.collectives / t.steps));
      j.set("step_rpc_ms", Json::number(1e3 * t.rpc / t.steps));
    }
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::printf("model     %s\n          %s\n", a.str("model").c_str(), c.summary().c_str());
  std::printf("weights   %.1f MB (decode streams %.1f MB/token)\n", weight_bytes / 1e6,
              streamed_bytes / 1e6);
  std::printf("ranks     %d x %lld threads, prompt %lld tokens, generate %lld tokens, median of %lld\n", ranks,
              static_cast<long long>(a.int64("threads")), static_cast<long long>(n_prompt),
              static_cast<long long>(n_gen), static_cast<long long>(repeat));
  print_time_split(runner);
  std::printf("\n%-8s %12s %14s %22s\n", "phase", "tokens/s", "achieved", "machine limit");
  if (lim.read_gbps > 0) {
    std::printf("%-8s %12.1f %9.1f GF/s %9.1f GF/s %s (%.0f%%)\n", "prefill", prefill_tps, prefill_gflops,
                lim.fma_gflops, lim.fma_isa, 100 * prefill_gflops / lim.fma_gflops);
    std::printf("%-8s %12.1f %9.2f GB/s %9.2f GB/s read   (%.0f%%)\n", "decode", decode_tps, decode_gbps,
                lim.read_gbps, 100 * decode_gbps / lim.read_gbps);
  } else {
    std::printf("%-8s %12.1f %9.1f GF/s\n", "prefill", prefill_tps, prefill_gflops);
    std::printf("%-8s %12.1f %9.2f GB/s\n", "decode", decode_tps, decode_gbps);
  }
  return 0;
}

}  // namespace tessera::cli
