#include "tests/cp/cp_rig.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "model/llama.h"
#include "tests/cp/cp_test_env.h"

namespace tessera::test {

namespace fs = std::filesystem;

CpRig::CpRig(const ParallelConfig& grid, const std::string& model, int64_t max_kv_tokens)
    : topology(grid, mpi().world_size(), mpi().world_rank()), comms(make_group_communicators(mpi(), topology)) {
  WorkerOptions o;
  o.threads = 1;
  o.kv_block_size = 16;
  o.max_kv_tokens = max_kv_tokens;
  ShardSpec spec;
  spec.tp = grid.tp;
  spec.pp = grid.pp;
  spec.tp_rank = topology.tp_rank();
  spec.pp_rank = topology.pp_rank();
  ModelComms mc;
  mc.tp = comms.tp.get();
  mc.pp = comms.pp.get();
  mc.cp = comms.cp.get();
  worker = std::make_unique<Worker>(model, o, spec, mc);
}

const CpAttentionStats& CpRig::cp_stats() const {
  const auto* llama = dynamic_cast<const LlamaModel*>(&worker->model());
  static const CpAttentionStats none;
  return llama != nullptr && llama->cp_stats() != nullptr ? *llama->cp_stats() : none;
}

std::vector<int64_t> CpRig::gather(int64_t value) const {
  std::vector<int64_t> all(static_cast<size_t>(topology.world_size()));
  comms.world->allgather(&value, all.data(), 1, CommType::kI64);
  return all;
}

StepResult LockstepRunner::run_step(const StepPlan& plan) {
  StepResult r = rig_.worker->run_step(plan);
  Communicator& world = *rig_.comms.world;
  const Topology& t = rig_.topology;
  const int root = t.rank_of(t.pp_size() - 1, 0, 0);
  // Flatten per output: rng state, n samples, tokens, n logits, logits (as raw i64/f32).
  std::vector<int64_t> head;
  std::vector<float> logits;
  if (world.rank() == root) {
    for (const SequenceOutput& o : r.outputs) {
      head.push_back(static_cast<int64_t>(o.rng_state));
      head.push_back(static_cast<int64_t>(o.samples.size()));
      for (const SampleResult& s : o.samples) head.push_back(s.token);
      head.push_back(static_cast<int64_t>(o.logits.size()));
      logits.insert(logits.end(), o.logits.begin(), o.logits.end());
    }
  }
  int64_t sizes[2] = {static_cast<int64_t>(head.size()), static_cast<int64_t>(logits.size())};
  world.broadcast(sizes, 2, CommType::kI64, root);
  head.resize(static_cast<size_t>(sizes[0]));
  logits.resize(static_cast<size_t>(sizes[1]));
  world.broadcast(head.data(), head.size(), CommType::kI64, root);
  if (!logits.empty()) world.broadcast(logits.data(), logits.size(), CommType::kF32, root);
  if (world.rank() == root) return r;
  r.outputs.clear();
  size_t h = 0, l = 0;
  for (const SequenceStep& s : plan.sequences) {
    SequenceOutput o;
    o.seq_id = s.seq_id;
    o.rng_state = static_cast<uint64_t>(head[h++]);
    const int64_t n = head[h++];
    for (int64_t i = 0; i < n; ++i) o.samples.push_back(SampleResult{static_cast<int32_t>(head[h++]), 0.0f, {}});
    const int64_t nl = head[h++];
    o.logits.assign(logits.begin() + static_cast<int64_t>(l), logits.begin() + static_cast<int64_t>(l) + nl);
    l += static_cast<size_t>(nl);
    r.outputs.push_back(std::move(o));
  }
  return r;
}

std::string long_context_tiny_llama() {
  static const std::string dir = [] {
    const fs::path src = fs::path(TESSERA_TEST_DATA) / "hf_tiny_llama";
    const fs::path dst = fs::temp_directory_path() / ("tessera_cp_tiny_" + std::to_string(getpid()));
    fs::create_directories(dst);
    std::ifstream in(src / "config.json");
    std::stringstream text;
    text << in.rdbuf();
    const std::string patched = std::regex_replace(text.str(), std::regex("\"max_position_embeddings\": *[0-9]+"),
                                                   "\"max_position_embeddings\": 32768");
    std::ofstream(dst / "config.json") << patched;
    fs::remove(dst / "model.safetensors");
    fs::create_symlink(src / "model.safetensors", dst / "model.safetensors");
    return dst.string();
  }();
  return dir;
}

namespace {
int64_t status_kb(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(key.size()));
  return -1;
}
}  // namespace

int64_t peak_rss_bytes() { return status_kb("VmHWM") * 1024; }
int64_t rss_bytes() { return status_kb("VmRSS") * 1024; }

}  // namespace tessera::test
