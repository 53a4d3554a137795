#include "cli/model_flags.h"

#include <thread>

#include "common/error.h"

namespace tessera::cli {

namespace {

int default_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

}  // namespace

void declare_model_flags(Args& a) {
  a.flag("model", "PATH", "checkpoint: a .gguf file, a llama2.c .bin, a .safetensors file, or a Hugging Face directory "
         "(config.json + *.safetensors, sharded or not)");
  a.flag("tokenizer", "PATH", "tokenizer file (tokenizer.model, tokenizer.json, llama2.c tok*.bin); default: from the "
         "GGUF metadata, or found next to the model");
  a.flag("threads", "N", "kernel threads", std::to_string(default_threads()));
  a.flag("ctx", "N", "maximum context (KV cache positions); 0 = the model's trained context", "0");
  a.flag("kv-block-size", "N", "positions per KV cache block", "16");
  a.flag("tp", "T", "tensor-parallel ranks (under mpirun: world size = tp x pp x cp)", "1");
  a.flag("pp", "P", "pipeline-parallel stages", "1");
  a.flag("ep", "E", "expert-parallel ranks (MoE models): each group of E ranks of a stage holds disjoint experts; "
         "must divide tp and the expert count", "1");
  a.flag("cp", "C", "context-parallel ranks: ring attention over a sequence split in 2C zigzag blocks, the KV cache "
         "sharded C ways (world size = tp x pp x cp; docs/CONTEXT_PARALLEL.md)", "1");
  a.flag("rpc-host", "ADDR", "address this rank's control-plane server binds to; default: 127.0.0.1 on rank 0's "
         "host, else the address the host name resolves to");
  a.flag("step-timeout", "SECONDS", "a rank that does not answer a step within this time fails the job", "60");
  a.flag("startup-timeout", "SECONDS", "under mpirun/srun: ranks that have not started within this time are named "
         "and the job is aborted", "60");
}

WorkerOptions worker_options_from(const Args& a) {
  WorkerOptions o;
  o.threads = static_cast<int>(a.int64("threads"));
  o.kv_block_size = a.int64("kv-block-size");
  o.max_kv_tokens = a.int64("ctx");
  TESSERA_REQUIRE(o.threads >= 1 && o.threads <= 1024, ErrorKind::kInvalidInput, "--threads must be in [1, 1024]");
  TESSERA_REQUIRE(o.kv_block_size >= 1 && o.kv_block_size <= 4096, ErrorKind::kInvalidInput,
                  "--kv-block-size must be in [1, 4096]");
  TESSERA_REQUIRE(o.max_kv_tokens >= 0, ErrorKind::kInvalidInput, "--ctx must be >= 0");
  return o;
}

}  // namespace tessera::cli

namespace tessera::cli {

ParallelConfig parallel_config_from(const Args& a) {
  ParallelConfig p;
  p.tp = static_cast<int>(a.int64("tp"));
  p.pp = static_cast<int>(a.int64("pp"));
  TESSERA_REQUIRE(p.tp >= 1 && p.tp <= 4096 && p.pp >= 1 && p.pp <= 4096, ErrorKind::kInvalidInput,
                  "--tp and --pp must be in [1, 4096]");
  if (a.has("cp")) {
    const int64_t cp = a.int64("cp");
    TESSERA_REQUIRE(cp >= 1 && cp <= 4096, ErrorKind::kInvalidInput, "--cp must be in [1, 4096], got ", cp);
    p.cp = static_cast<int>(cp);
  }
  p.ep = static_cast<int>(a.int64("ep"));
  TESSERA_REQUIRE(p.ep >= 1 && p.ep <= 4096, ErrorKind::kInvalidInput, "--ep must be in [1, 4096]");
  TESSERA_REQUIRE((p.tp * p.cp) % p.ep == 0, ErrorKind::kInvalidInput, "--ep ", p.ep,
                  " must divide the ranks of a pipeline stage (tp x cp = ", p.tp * p.cp, ")");
  return p;
}

ClusterOptions cluster_options_from(const Args& a) {
  ClusterOptions o;
  o.parallel = parallel_config_from(a);
  o.rpc_host = a.str("rpc-host");
  const double timeout = a.real("step-timeout");
  TESSERA_REQUIRE(timeout > 0, ErrorKind::kInvalidInput, "--step-timeout must be > 0");
  o.step_timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout * 1000));
  const double startup = a.real("startup-timeout");
  TESSERA_REQUIRE(startup > 0, ErrorKind::kInvalidInput, "--startup-timeout must be > 0");
  o.startup_timeout = std::chrono::milliseconds(static_cast<int64_t>(startup * 1000));
  const WorkerOptions w = worker_options_from(a);
  o.load.model_path = a.str("model");
  o.load.threads = w.threads;
  o.load.kv_block_size = static_cast<int32_t>(w.kv_block_size);
  o.load.kv_blocks = w.max_kv_tokens > 0 ? static_cast<int32_t>(worker_kv_blocks(w.max_kv_tokens, w.kv_block_size,
                                                                                  o.parallel.cp))
                                          : 0;
  return o;
}

}  // namespace tessera::cli
