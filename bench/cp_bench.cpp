// cp_bench: prefill of one long random prompt over a context-parallel ring (not part of
// ctest; docs/CONTEXT_PARALLEL.md and docs/BENCHMARKS.md have the commands and results).
//   mpiexec -n C cp_bench --model M.gguf --cp C --tokens 8192,16384 [--chunk K] [--threads T]
//                         [--kv-block-size B] [--tp T]
// Every rank runs the same coordinator code in lockstep (as in tests/cp). Per prompt
// length it prints one line: prefill wall time, per-rank peak RSS and KV pool, attention
// pairs per rank (balance), attention GFLOP/s on the ring, the ring's exposed wait, and the
// share of ring communication hidden behind compute: 1 - wait / (the same ring transfers
// timed alone, without compute, right after).
#include <mpi.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "collectives/group_communicators.h"
#include "collectives/mpi_context.h"
#include "coordinator/generator.h"
#include "model/llama.h"
#include "worker/worker.h"

using namespace tessera;

namespace {

int64_t status_kb(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line, key = std::string(field) + ":";
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(key.size()));
  return -1;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoll(item));
  return out;
}

// The result of rank (pp - 1, cp 0, tp 0) broadcast to all (the coordinator's view).
class Runner final : public StepRunner {
 public:
  Runner(Worker& w, Communicator& world) : w_(w), world_(world) {}
  StepResult run_step(const StepPlan& plan) override {
    StepResult r = w_.run_step(plan);
    int64_t tok = r.outputs.empty() || r.outputs[0].samples.empty() ? -1 : r.outputs[0].samples.back().token;
    world_.broadcast(&tok, 1, CommType::kI64, 0);
    if (r.outputs.empty()) r.outputs.resize(plan.sequences.size());
    for (auto& o : r.outputs)
      if (plan.sequences[0].n_outputs > 0 && o.samples.empty()) o.samples.push_back(SampleResult{static_cast<int32_t>(tok), 0.0f, {}});
    return r;
  }
  const ModelConfig& config() const override { return w_.config(); }
  int64_t kv_blocks() const override { return w_.kv_shape().n_blocks; }
  int64_t kv_block_size() const override { return w_.kv_shape().block_size; }
  int cp_size() const override { return w_.cp_size(); }

 private:
  Worker& w_;
  Communicator& world_;
};

}  // namespace

int main(int argc, char** argv) {
  MpiContext mpi(&argc, &argv);
  std::string model;
  std::vector<int64_t> lengths{8192};
  int64_t chunk = 0, threads = 1, block = 16;
  int cp = mpi.world_size(), tp = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") model = v;
    else if (k == "--tokens") lengths = parse_list(v);
    else if (k == "--chunk") chunk = std::stoll(v);
    else if (k == "--threads") threads = std::stoll(v);
    else if (k == "--kv-block-size") block = std::stoll(v);
    else if (k == "--tp") tp = std::stoi(v);
    else if (k == "--cp") cp = std::stoi(v);
  }
  const int64_t rss0 = status_kb("VmRSS") * 1024;
  Topology topo(ParallelConfig{tp, 1, cp, 1}, mpi.world_size(), mpi.world_rank());
  GroupCommunicators comms = make_group_communicators(mpi, topo);
  const int64_t longest = *std::max_element(lengths.begin(), lengths.end());
  WorkerOptions o;
  o.threads = static_cast<int>(threads);
  o.kv_block_size = block;
  o.max_kv_tokens = longest + 64;
  ShardSpec spec;
  spec.tp = tp;
  spec.tp_rank = topo.tp_rank();
  ModelComms mc{comms.tp.get(), comms.pp.get(), comms.cp.get()};
  Worker worker(model, o, spec, mc);
  Runner runner(worker, *comms.world);
  const auto* llama = dynamic_cast<const LlamaModel*>(&worker.model());
  const CpAttentionStats none;
  auto stats = [&] { return llama && llama->cp_stats() ? *llama->cp_stats() : none; };
  const int rank = mpi.world_rank(), world = mpi.world_size();
  const ModelConfig& c = worker.config();
  if (rank == 0)
    std::printf("model %s: %s\ncp %d tp %d, %lld threads per rank, chunk %lld, KV block %lld\n", model.c_str(),
                c.summary().c_str(), cp, tp, static_cast<long long>(threads), static_cast<long long>(chunk),
                static_cast<long long>(block));
  for (const int64_t n : lengths) {
    std::mt19937 rng(static_cast<uint32_t>(n));
    std::vector<int32_t> prompt(static_cast<size_t>(n));
    for (auto& t : prompt) t = static_cast<int32_t>(3 + rng() % static_cast<uint32_t>(c.vocab_size - 3));
    prompt[0] = 1;
    const CpAttentionStats s0 = stats();
    KvBlockAllocator alloc(runner.kv_blocks());
    SequenceStep seq;
    seq.seq_id = 1;
    double fw = 0;
    comms.world->barrier();
    const double cpu0 = cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    prefill_sequence(runner, alloc, seq, prompt, chunk > 0 ? chunk : n, true, &fw);
    comms.world->barrier();
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = cpu_seconds() - cpu0;
    alloc.release(seq.block_table);
    const CpAttentionStats s1 = stats();
    // The same ring transfers alone (no compute), for the hidden share.
    double alone = 0;
    if (cp > 1 && s1.ring_steps > s0.ring_steps) {
      const int64_t steps = s1.ring_steps - s0.ring_steps;
      const size_t floats = static_cast<size_t>((s1.ring_bytes - s0.ring_bytes) / steps / 4);
      std::vector<float> a(floats, 1.0f), b(floats);
      Communicator& ring = *comms.cp;
      comms.world->barrier();
      const auto t1 = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < steps; ++i)
        ring.sendrecv(a.data(), floats, (ring.rank() + 1) % cp, b.data(), floats, (ring.rank() + cp - 1) % cp,
                      CommType::kF32, MpiTag::kRingKv);
      alone = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    }
    const double flops_per_pair = 4.0 * c.head_dim * (c.n_heads / tp);
    constexpr int kF = 10;
    double mine[kF] = {static_cast<double>(status_kb("VmHWM")) * 1024,
                       static_cast<double>(s1.visible_pairs - s0.visible_pairs),
                       static_cast<double>(s1.ring_pairs - s0.ring_pairs),
                       s1.ring_compute_seconds - s0.ring_compute_seconds,
                       s1.shard_seconds - s0.shard_seconds,
                       s1.ring_wait_seconds - s0.ring_wait_seconds,
                       alone,
                       s1.gather_seconds - s0.gather_seconds,
                       static_cast<double>(worker.kv_shape().bytes()),
                       cpu};
    std::vector<double> all(static_cast<size_t>(kF * world));
    MPI_Gather(mine, kF, MPI_DOUBLE, all.data(), kF, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    if (rank != 0) continue;
    std::vector<double> hi(kF, 0.0), lo(kF, 1e300), sum(kF, 0.0);
    for (int r = 0; r < world; ++r)
      for (int f = 0; f < kF; ++f) {
        hi[f] = std::max(hi[f], all[kF * r + f]);
        lo[f] = std::min(lo[f], all[kF * r + f]);
        sum[f] += all[kF * r + f];
      }
    // Per rank: pairs attended (all layers), ring and shard attention GFLOP/s.
    const double ring_gflops = hi[3] > 0 ? hi[2] * flops_per_pair / hi[3] / 1e9 : 0;
    const double shard_gflops = hi[4] > 0 ? (hi[1] - hi[2]) * flops_per_pair / hi[4] / 1e9 : 0;
    const double hidden = hi[6] > 0 ? std::clamp(1.0 - hi[5] / hi[6], 0.0, 1.0) : 0;
    std::printf("n %8lld: prefill %8.2f s (%7.0f tok/s), CPU %7.2f s/rank (max), peak RSS/rank %6.1f MiB (start "
                "%.1f), KV pool/rank %6.2f MiB, pairs/rank %.4g..%.4g (imbalance %.3f%%), ring %.1f GFLOP/s/rank "
                "over %.2f s, shard %.1f GFLOP/s/rank over %.2f s, ring wait %.3f s, ring transfers alone %.3f s "
                "(hidden %.0f%%), q/partials exchange %.2f s\n",
                static_cast<long long>(n), wall, n / wall, hi[9], hi[0] / 1048576, rss0 / 1048576.0, hi[8] / 1048576,
                lo[1], hi[1], hi[1] > 0 ? 100 * (hi[1] - lo[1]) / hi[1] : 0, ring_gflops, hi[3], shard_gflops, hi[4],
                hi[5], hi[6], 100 * hidden, hi[7]);
    std::fflush(stdout);
  }
  return 0;
}
