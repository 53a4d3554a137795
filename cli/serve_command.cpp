// tessera serve: the OpenAI-compatible HTTP API with continuous batching
// (docs/SERVING.md). Alone, or under `mpirun -n N tessera serve --tp T --pp P`, where
// rank 0 runs the coordinator (scheduler + HTTP) and every rank a worker.
#include <chrono>
#include <csignal>
#include <thread>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include "checkpoint/gguf_reader.h"
#include "checkpoint/open.h"
#include "cli/args.h"
#include "cli/cluster.h"
#include "cli/commands.h"
#include "cli/model_flags.h"
#include "common/error.h"
#include "common/json.h"
#include "coordinator/adaptive_k.h"
#include "coordinator/model_tokenizer.h"
#include "coordinator/serving_loop.h"
#include "server/capnp_server.h"
#include "server/http_server.h"
#include "server/openai_api.h"
#include "worker/worker.h"

namespace tessera::cli {

namespace {

// Set by SIGINT / SIGTERM; the only way a signal handler can talk to the loop.
std::atomic<bool> g_stop_requested{false};
void on_signal(int) { g_stop_requested.store(true); }

std::string default_model_name(const std::string& path) {
  std::string name = path;
  while (!name.empty() && name.back() == '/') name.pop_back();
  if (auto slash = name.rfind('/'); slash != std::string::npos) name = name.substr(slash + 1);
  for (const char* ext : {".gguf", ".bin", ".safetensors"}) {
    const std::string e(ext);
    if (name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0) name.resize(name.size() - e.size());
  }
  return name;
}

// The checkpoint's Jinja chat template and where it came from: the GGUF key
// tokenizer.chat_template, else chat_template in a tokenizer_config.json next to the
// model (or next to --tokenizer). nullopt when there is none.
struct FoundTemplate {
  std::string text;
  std::string source;
};

std::optional<FoundTemplate> checkpoint_chat_template(const std::string& model_path,
                                                      const checkpoint::Checkpoint& ck,
                                                      const std::string& tokenizer_path) {
  namespace fs = std::filesystem;
  if (ck.format() == "gguf") {
    std::optional<std::string> t;
    if (const auto* g = dynamic_cast<const checkpoint::GgufReader*>(&ck)) {
      t = g->metadata().opt_string("tokenizer.chat_template");
    } else if (fs::is_regular_file(model_path)) {
      t = checkpoint::GgufReader(model_path).metadata().opt_string("tokenizer.chat_template");
    }
    if (t && !t->empty()) return FoundTemplate{*t, "GGUF tokenizer.chat_template"};
  }
  std::vector<fs::path> dirs;
  for (const std::string& p : {model_path, tokenizer_path}) {
    if (p.empty()) continue;
    const fs::path path(p);
    dirs.push_back(fs::is_directory(path) ? path : path.parent_path());
  }
  for (const fs::path& dir : dirs) {
    const fs::path config = (dir.empty() ? fs::path(".") : dir) / "tokenizer_config.json";
    std::ifstream in(config, std::ios::binary);
    if (!in) continue;
    std::stringstream text;
    text << in.rdbuf();
    Json root;
    try {
      root = Json::parse(text.str(), config.string());
    } catch (const Error& e) {  // a broken side file must not stop serving
      std::cerr << "tessera serve: ignoring " << e.what() << std::endl;
      continue;
    }
    const Json* t = root.find("chat_template");
    if (!t || t->is_null()) continue;
    const std::string source = config.string() + " chat_template";
    if (t->is_string()) {
      if (!t->as_string().empty()) return FoundTemplate{t->as_string(), source};
      continue;
    }
    // Newer configs: a list of {"name": ..., "template": ...}; "default" first.
    if (t->is_array()) {
      const Json* chosen = nullptr;
      for (const Json& e : t->as_array()) {
        const Json* name = e.find("name");
        const Json* tmpl = e.find("template");
        if (!tmpl || !tmpl->is_string()) continue;
        if (!chosen || (name && name->is_string() && name->as_string() == "default")) chosen = tmpl;
      }
      if (chosen) return FoundTemplate{chosen->as_string(), source};
    }
  }
  return std::nullopt;
}

// --chat-template auto: the built-in renderer matching the checkpoint's template;
// plain, with a one-line notice naming what was found, when none matches.
std::string auto_chat_template(const std::string& model_path, const checkpoint::Checkpoint& ck,
                               const std::string& tokenizer_path) {
  const auto found = checkpoint_chat_template(model_path, ck, tokenizer_path);
  if (!found) {
    std::cerr << "tessera serve: no chat template in the checkpoint; using the plain chat template "
                 "(--chat-template to choose)" << std::endl;
    return "plain";
  }
  const std::string name = server::chat_template_name(found->text);
  if (name != "plain") {
    std::cerr << "tessera serve: chat template " << name << " (recognised in " << found->source << ")" << std::endl;
    return name;
  }
  std::string head = found->text.substr(0, 60);
  for (char& c : head)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  std::cerr << "tessera serve: " << found->source << " (" << found->text.size() << " bytes, starting \""
            << head << (found->text.size() > head.size() ? "..." : "")
            << "\") matches none of chatml, llama2, llama3, zephyr; using the plain chat template "
               "(--chat-template to choose)" << std::endl;
  return "plain";
}

int serve(const Args& a, StepRunner& runner, const Tokenizer& tok, const checkpoint::Checkpoint& ck) {
  TESSERA_REQUIRE(tok.vocab_size() <= runner.config().vocab_size, ErrorKind::kInvalidInput, "the tokenizer has ",
                  tok.vocab_size(), " tokens but the model only ", runner.config().vocab_size);
  SchedulerConfig sc;
  sc.max_batch_tokens = a.int64("max-batch-tokens");
  sc.max_running = a.int64("max-running");
  sc.max_waiting = a.int64("max-queue");
  sc.max_context = runner.config().max_seq_len;
  if (a.int64("ctx") > 0) sc.max_context = std::min(sc.max_context, a.int64("ctx"));
  sc.prefix_caching = !a.on("no-prefix-cache");
  const double max_step_ms = a.real("max-step-ms");
  TESSERA_REQUIRE(max_step_ms >= 0, ErrorKind::kInvalidInput, "--max-step-ms must be >= 0, got ", max_step_ms);
  sc.max_step_seconds = max_step_ms / 1000;
  sc.cp = runner.cp_size();  // CP: shards, no prefix cache (coordinator/scheduler.h)
  std::unique_ptr<DraftProposer> drafts;
  if (a.has("draft")) {
    // Fixed-state targets (RecurrentGemma) speculate with two state slots per sequence
    // (the scheduler restores the saved state after a rejection); their drafts are
    // ngram or a KV-cache model of the same vocabulary (make_draft refuses a fixed-state
    // draft model).
    TESSERA_REQUIRE(!runner.config().fixed_state || runner.state_slots() >= 2, ErrorKind::kInvalidInput,
                    "--draft with ", runner.config().architecture, ": speculative decoding needs 2 state slots per "
                    "sequence, the workers hold ", runner.state_slots());
    TESSERA_REQUIRE(runner.cp_size() == 1, ErrorKind::kInvalidInput,
                    "--draft with --cp: rolling back a context-parallel sequence's sharded KV after a rejection "
                    "is not implemented yet");
    sc.speculative_k = static_cast<int32_t>(a.int64("draft-k"));
    TESSERA_REQUIRE(sc.speculative_k >= 1 && sc.speculative_k <= 16, ErrorKind::kInvalidInput,
                    "--draft-k must be in 1..16, got ", sc.speculative_k);
    sc.speculative_adaptive = a.on("draft-k-adaptive");
    sc.speculative_k_max = static_cast<int32_t>(a.int64("draft-k-max"));
    TESSERA_REQUIRE(sc.speculative_k_max >= 1 && sc.speculative_k_max <= 16, ErrorKind::kInvalidInput,
                    "--draft-k-max must be in 1..16, got ", sc.speculative_k_max);
    TESSERA_REQUIRE(!sc.speculative_adaptive || sc.speculative_k <= sc.speculative_k_max, ErrorKind::kInvalidInput,
                    "--draft-k-adaptive: --draft-k is the start value and must be in 1..", sc.speculative_k_max,
                    ", got ", sc.speculative_k, " (--draft-k-max raises the bound)");
    sc.speculative_max_batch_tokens = a.int64("draft-max-batch-tokens");
    TESSERA_REQUIRE(sc.speculative_max_batch_tokens >= 0, ErrorKind::kInvalidInput,
                    "--draft-max-batch-tokens must be >= 0 (0: no cap), got ", sc.speculative_max_batch_tokens);
    drafts = make_draft_proposer(a.str("draft"), a.str("model"), worker_options_from(a), runner.config().vocab_size);
  } else {
    TESSERA_REQUIRE(!a.on("draft-k-adaptive") && a.int64("draft-max-batch-tokens") == 0, ErrorKind::kInvalidInput,
                    "--draft-k-adaptive and --draft-max-batch-tokens need --draft");
  }
  ServingLoop loop(runner, sc, drafts.get());

  server::HttpServerOptions ho;
  const std::string http = a.str("http");
  const auto colon = http.rfind(':');
  TESSERA_REQUIRE(colon != std::string::npos && colon > 0, ErrorKind::kInvalidInput, "--http must be HOST:PORT, got '",
                  http, "'");
  ho.host = http.substr(0, colon);
  const int64_t port = std::strtoll(http.c_str() + colon + 1, nullptr, 10);
  TESSERA_REQUIRE(port >= 0 && port <= 65535, ErrorKind::kInvalidInput, "--http port out of range: '", http, "'");
  ho.port = static_cast<int>(port);
  ho.api_key = a.str("api-key");
  ho.model_name = a.has("model-name") ? a.str("model-name") : default_model_name(a.str("model"));
  ho.chat_template = a.str("chat-template");
  TESSERA_REQUIRE(ho.chat_template == "auto" || ho.chat_template == "plain" || ho.chat_template == "chatml" || ho.chat_template == "llama2" ||
                      ho.chat_template == "llama3" || ho.chat_template == "zephyr",
                  ErrorKind::kInvalidInput, "--chat-template must be auto, plain, chatml, llama2, llama3 or zephyr");
  if (ho.chat_template == "auto") ho.chat_template = auto_chat_template(a.str("model"), ck, a.str("tokenizer"));
  ho.max_body_bytes = a.int64("max-body-bytes");
  ho.limits.model = ho.model_name;
  ho.limits.max_context = loop.config().max_context;
  server::Metrics metrics;
  server::HttpServer http_server(ho, loop, tok, metrics);
  const int bound = http_server.start();
  // The Cap'n Proto client API (schemas/client.capnp): only where --capnp asks.
  std::unique_ptr<server::CapnpServer> capnp_server;
  if (a.has("capnp")) {
    const std::string where = a.str("capnp");
    const auto c = where.rfind(':');
    TESSERA_REQUIRE(c != std::string::npos && c > 0, ErrorKind::kInvalidInput, "--capnp must be HOST:PORT, got '",
                    where, "'");
    const int64_t cport = std::strtoll(where.c_str() + c + 1, nullptr, 10);
    TESSERA_REQUIRE(cport >= 0 && cport <= 65535, ErrorKind::kInvalidInput, "--capnp port out of range: '", where, "'");
    server::CapnpServerOptions co;
    co.host = where.substr(0, c);
    co.port = static_cast<int>(cport);
    co.api_key = ho.api_key;
    co.model_name = ho.model_name;
    co.chat_template = ho.chat_template;
    co.limits = ho.limits;
    capnp_server = std::make_unique<server::CapnpServer>(co, loop, tok, metrics);
    const int cbound = capnp_server->start();
    std::cerr << "tessera serve: Cap'n Proto API on " << co.host << ":" << cbound << std::endl;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::cerr << "tessera serve: model '" << ho.model_name << "' on http://" << ho.host << ":" << bound
            << " (context " << ho.limits.max_context << ", KV " << runner.kv_blocks() << " blocks x "
            << runner.kv_block_size() << ", batch " << sc.max_batch_tokens << " tokens, queue " << sc.max_waiting
            << ")" << std::endl;
  loop.run([] { return g_stop_requested.load(); });
  const std::string failure = loop.failure();
  // Let the answers to open requests (503 after a failure) reach their clients.
  if (!failure.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  if (capnp_server) capnp_server->stop();
  http_server.stop();
  // A failed worker ends the job with a non-zero exit (SLURM requeues it); under mpirun
  // run_cluster reports the error with its rank and aborts every rank.
  TESSERA_REQUIRE(failure.empty(), ErrorKind::kDisconnected, "serving stopped: ", failure);
  std::cerr << "tessera serve: stopped" << std::endl;
  return 0;
}

}  // namespace

int run_serve(int argc, char** argv) {
  Args a("serve", "Serves the model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, "
                  "/v1/models, /health, /metrics) with continuous batching. Runs in one process, or under "
                  "`mpirun -n N tessera serve --tp T --pp P ...` with rank 0 serving HTTP. See docs/SERVING.md.");
  declare_model_flags(a);
  a.flag("http", "HOST:PORT", "address to serve HTTP on (port 0: any free port, printed at start)", "127.0.0.1:8000");
  a.flag("capnp", "HOST:PORT", "also serve the Cap'n Proto client API (schemas/client.capnp) there; off by default "
         "(port 0: any free port, printed at start)");
  a.flag("api-key", "KEY", "require 'Authorization: Bearer KEY' on /v1/ endpoints");
  a.flag("model-name", "NAME", "the model id clients must send; default: the checkpoint's file name without extension");
  a.flag("chat-template", "NAME", "chat prompt format: auto (recognised in the checkpoint's chat template, plain "
         "when none matches), plain, chatml, llama2, llama3 or zephyr", "auto");
  a.flag("max-batch-tokens", "N", "tokens per step: decodes plus prefill chunks (chunked prefill)", "256");
  a.flag("max-running", "N", "sequences batched together at most", "64");
  a.flag("max-step-ms", "MS", "bound each step's predicted time (so every running request's inter-token latency): "
         "prefill chunks shrink and admission waits to keep steps under it, from a step-time model learnt online; "
         "0: bound tokens only (--max-batch-tokens)", "0");
  a.flag("draft", "PATH|int8|ngram", "speculative decoding (docs/SPECULATIVE.md) for every request that does "
         "not ask for prompt logprobs (echo): a draft checkpoint with the target's vocabulary, an int8 copy of the "
         "target, or prompt lookup; model drafts run in rank 0's process");
  a.flag("draft-k", "K", "draft tokens verified per target pass (with --draft)", "4");
  a.flag("draft-k-adaptive", "", "adapt each request's K (1..--draft-k-max) to its own acceptance, starting from "
         "--draft-k (+1 after a fully accepted draft, -1 after one with fewer than half accepted)");
  a.flag("draft-k-max", "K", "the largest K --draft-k-adaptive grows to (1..16)", "8");
  a.flag("draft-max-batch-tokens", "N", "cap a step's verify work: the decoding sequences take at most N tokens "
         "together (K + 1 each), the largest K shrinking first down to plain decoding; 0: no cap "
         "(docs/SPECULATIVE.md, \"In tessera serve\", on choosing N)", "0");
  a.flag("max-queue", "N", "requests waiting at most; beyond it the server answers 429", "256");
  a.flag("kv-tokens", "N", "KV cache positions shared by all sequences (a multiple of --kv-block-size)", "16384");
  a.flag("max-body-bytes", "N", "largest request body", "1048576");
  a.flag("no-prefix-cache", "", "do not reuse KV blocks of equal prompt prefixes");
  if (!a.parse(argc, argv, 2)) {
    std::cout << a.help();
    return 0;
  }
  TESSERA_REQUIRE(a.has("model"), ErrorKind::kInvalidInput, "tessera serve: --model PATH is required");
  TESSERA_REQUIRE(a.int64("kv-tokens") >= 1, ErrorKind::kInvalidInput, "--kv-tokens must be >= 1");
  auto body = [&](StepRunner& runner, const checkpoint::Checkpoint& ck) -> int {
    auto tokenizer = load_model_tokenizer(a.str("model"), ck, a.str("tokenizer"));
    return serve(a, runner, *tokenizer, ck);
  };
  WorkerOptions wo = worker_options_from(a);
  // --kv-tokens counts positions of all sequences; under CP a rank holds about 1/C of them.
  wo.kv_blocks = worker_kv_blocks(a.int64("kv-tokens"), wo.kv_block_size, parallel_config_from(a).cp);
  if (launched_distributed(parallel_config_from(a))) {
    ClusterOptions co = cluster_options_from(a);
    co.load.kv_blocks = static_cast<int32_t>(wo.kv_blocks);
    return run_cluster(nullptr, nullptr, co, [&](StepRunner& runner, const Topology&) {
      return body(runner, *checkpoint::open_checkpoint(a.str("model")));
    });
  }
  Worker worker(a.str("model"), wo);
  LocalStepRunner runner(worker);
  return body(runner, worker.checkpoint());
}

}  // namespace tessera::cli
