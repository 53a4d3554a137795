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
