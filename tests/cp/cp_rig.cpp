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
