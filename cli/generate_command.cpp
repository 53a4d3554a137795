// tessera generate: text from a checkpoint, streamed to stdout token by token.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "cli/args.h"
#include "checkpoint/open.h"
#include "cli/cluster.h"
#include "cli/commands.h"
#include "cli/model_flags.h"
#include "common/error.h"
#include "common/mapped_file.h"
#include "coordinator/generator.h"
#include "coordinator/speculative_generator.h"
#include "coordinator/step_runner.h"
#include "coordinator/model_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "worker/worker.h"

namespace tessera::cli {

namespace {

SamplerKind parse_sampler(const std::string& s) {
  if (s == "standard") return SamplerKind::kStandard;
  if (s == "llama2c") return SamplerKind::kLlama2c;
  TESSERA_FAIL(ErrorKind::kInvalidInput, "--sampler must be 'standard' or 'llama2c', got '", s, "'");
}

}  // namespace

int generate_text(const Args& a, const std::string& prompt_text, StepRunner& runner, const Tokenizer& tok);
int run_batch_job(const Args& a, StepRunner& runner, const Tokenizer& tok);  // cli/batch_job.cpp
int64_t batch_kv_blocks(const Args& a);                                      // cli/batch_job.cpp

int run_generate(int argc, char** argv) {
  Args a("generate", "Generates text from a checkpoint, streaming tokens to stdout as they are produced. The prompt "
                     "is echoed first (llama2.c and llama.cpp do the same). Runs in one process, or split over "
                     "the ranks of `mpirun -n N tessera generate --tp T --pp P --cp C ...` (N = T x P x C).");
  declare_model_flags(a);
  a.flag("prompt", "TEXT", "prompt text; empty means start from BOS alone", "");
  a.flag("prompt-file", "PATH", "read the prompt from a file instead of --prompt");
  a.flag("max-tokens", "N", "new tokens to generate at most", "256");
  a.flag("steps", "N", "llama2.c semantics: forward passes including BOS and the prompt, so N - prompt + 1 new "
         "tokens (overrides --max-tokens)");
  a.flag("temperature", "T", "sampling temperature; 0 = greedy (argmax)", "0");
  a.flag("top-k", "K", "keep the K most likely tokens; 0 = off", "0");
  a.flag("top-p", "P", "nucleus sampling: keep the smallest set with probability >= P; 1 = off", "1");
  a.flag("seed", "S", "random seed (xorshift64* state); 0 = from the clock", "0");
  a.flag("sampler", "KIND", "standard (top-k, temperature, top-p, like llama.cpp/vLLM) or llama2c (run.c's exact "
         "sampler and stop rule: stop when BOS is sampled, not at EOS)", "standard");
  a.flag("prefill-chunk", "N", "prompt tokens per prefill step", "512");
  a.flag("no-echo", "", "do not print the prompt, only the continuation");
  a.flag("timings", "", "print prefill and decode tokens/s to stderr at the end");
  a.flag("show-ids", "", "print the prompt and generated token ids to stderr at the end");
  a.flag("draft", "PATH|int8|ngram", "speculative decoding (docs/SPECULATIVE.md): a draft checkpoint with the "
         "target's vocabulary, an int8 copy of the target, or prompt-lookup n-grams; the output follows the "
         "target's distribution exactly");
  a.flag("draft-k", "K", "draft tokens verified per target pass", "4");
  a.flag("draft-k-adaptive", "", "adapt K (1..--draft-k-max) to the running acceptance, starting from --draft-k");
  a.flag("draft-k-max", "K", "the largest K --draft-k-adaptive grows to", "8");
  a.flag("prompts", "FILE", "offline batch job: one prompt per line (JSON {\"id\":..., \"prompt\":...} or plain "
         "text), answered with continuous batching; results go to --output (docs/CLUSTER.md)");
  a.flag("output", "FILE", "batch job results, JSONL, appended as each prompt finishes; ids already there are "
         "skipped, so a rerun (a requeued job) resumes");
  a.flag("batch-size", "N", "batch job: sequences generated at once", "16");
  a.flag("micro-batches", "M", "batch job: micro-batches in flight (pipeline overlap); default: --pp");
  a.flag("no-progress", "", "no prefill progress line on stderr (shown for prompts of 32768 tokens or more)");
  if (!a.parse(argc, argv, 2)) {
    std::cout << a.help();
    return 0;
  }
  TESSERA_REQUIRE(a.has("model"), ErrorKind::kInvalidInput, "tessera generate: --model PATH is required");
  TESSERA_REQUIRE(!(a.has("prompt") && a.has("prompt-file")), ErrorKind::kInvalidInput,
                  "give --prompt or --prompt-file, not both");
  TESSERA_REQUIRE(!(a.has("prompts") && (a.has("prompt") || a.has("prompt-file"))), ErrorKind::kInvalidInput,
                  "give --prompts FILE (batch job) or --prompt/--prompt-file, not both");
  const std::string prompt_text = a.has("prompt-file") ? read_text_file(a.str("prompt-file")) : a.str("prompt");

  auto body = [&](StepRunner& runner, const checkpoint::Checkpoint& ck) -> int {
    auto tokenizer = load_model_tokenizer(a.str("model"), ck, a.str("tokenizer"));
    TESSERA_REQUIRE(!(a.has("prompts") && runner.cp_size() > 1), ErrorKind::kUnsupported,
                    "--prompts (batch job) does not run with --cp > 1 yet: use --prompt/--prompt-file");
    if (a.has("prompts")) return run_batch_job(a, runner, *tokenizer);
    return generate_text(a, prompt_text, runner, *tokenizer);
  };
  if (launched_distributed(parallel_config_from(a))) {
    ClusterOptions co = cluster_options_from(a);
    co.print_layout = a.on("timings");
    if (const int64_t kv = batch_kv_blocks(a); kv > 0) co.load.kv_blocks = static_cast<int32_t>(kv);
    return run_cluster(nullptr, nullptr, co, [&](StepRunner& runner, const Topology&) {
      return body(runner, *checkpoint::open_checkpoint(a.str("model")));
    });
  }
  WorkerOptions wo = worker_options_from(a);
  if (const int64_t kv = batch_kv_blocks(a); kv > 0) wo.kv_blocks = kv;
  Worker worker(a.str("model"), wo);
  LocalStepRunner runner(worker);
  return body(runner, worker.checkpoint());
}

int generate_text(const Args& a, const std::string& prompt_text, StepRunner& runner, const Tokenizer& tok) {
  const Tokenizer* tokenizer = &tok;
  TESSERA_REQUIRE(tokenizer->vocab_size() <= runner.config().vocab_size, ErrorKind::kInvalidInput,
                  "the tokenizer has ", tokenizer->vocab_size(), " tokens but the model only ",
                  runner.config().vocab_size);

  GenerateOptions opt;
  opt.sampling.temperature = static_cast<float>(a.real("temperature"));
  opt.sampling.top_k = static_cast<int32_t>(a.int64("top-k"));
  opt.sampling.top_p = static_cast<float>(a.real("top-p"));
  opt.sampling.kind = parse_sampler(a.str("sampler"));
  TESSERA_REQUIRE(opt.sampling.temperature >= 0, ErrorKind::kInvalidInput, "--temperature must be >= 0");
  TESSERA_REQUIRE(opt.sampling.top_k >= 0, ErrorKind::kInvalidInput, "--top-k must be >= 0");
  int64_t seed = a.int64("seed");
  if (seed == 0) seed = std::chrono::high_resolution_clock::now().time_since_epoch().count();
  opt.seed = static_cast<uint64_t>(seed);
  opt.prefill_chunk = a.int64("prefill-chunk");

  // The prompt: BOS (when the vocabulary uses one) then the text.
  std::vector<int32_t> prompt = tokenizer->encode(prompt_text, /*add_special=*/true);
  if (prompt.empty() && tokenizer->bos_id() >= 0) prompt.push_back(tokenizer->bos_id());
  TESSERA_REQUIRE(!prompt.empty(), ErrorKind::kInvalidInput,
                  "the prompt is empty and the vocabulary has no BOS token to start from");

  opt.max_new_tokens = a.int64("max-tokens");
  // llama2.c counts forward passes: position 0 (BOS) through steps - 1, each producing
  // the token after it, so the last prompt position already yields a new token.
  if (a.has("steps")) opt.max_new_tokens = a.int64("steps") - static_cast<int64_t>(prompt.size()) + 1;
  TESSERA_REQUIRE(opt.max_new_tokens >= 0, ErrorKind::kInvalidInput, "nothing to generate: --max-tokens/--steps "
                  "leave no room after the ", prompt.size(), "-token prompt");
  if (opt.sampling.kind == SamplerKind::kLlama2c) {
    if (tokenizer->bos_id() >= 0) opt.stop_tokens.push_back(tokenizer->bos_id());
  } else {
    for (int32_t id = 0; id < tokenizer->vocab_size(); ++id)
      if (tokenizer->is_eos(id)) opt.stop_tokens.push_back(id);
  }

  // Long prompts (context parallelism, docs/CONTEXT_PARALLEL.md): one line on stderr,
  // rewritten after every chunk, so a prefill of a million tokens shows where it is.
  const auto prefill_start = std::chrono::steady_clock::now();
  if (prompt.size() >= 32768 && !a.on("no-progress")) {
    opt.on_prefill_progress = [prefill_start](int64_t done, int64_t total) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - prefill_start).count();
      std::fprintf(stderr, "\rtessera: prefill %lld / %lld tokens (%.1f%%), %.1f s, %.0f tok/s%s",
                   static_cast<long long>(done), static_cast<long long>(total), 100.0 * done / total, s,
                   s > 0 ? done / s : 0.0, done == total ? "\n" : "");
      std::fflush(stderr);
    };
  }

  StreamDecoder out(*tokenizer);
  if (!a.on("no-echo")) {
    std::string text;
    for (int32_t id : prompt) text += out.push(id);
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
  } else {
    for (int32_t id : prompt) (void)out.push(id);  // keeps the leading-space rule consistent
  }
  std::vector<int32_t> generated;
  auto on_token = [&](int32_t id) {
    generated.push_back(id);
    const std::string piece = out.push(id);
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  };
  GenerateStats stats;
  std::unique_ptr<SpeculativeGenerator> speculative;
  std::unique_ptr<Draft> draft;
  if (a.has("draft")) {
    TESSERA_REQUIRE(runner.cp_size() == 1, ErrorKind::kUnsupported,
                    "--draft (speculative decoding) does not run with --cp > 1 yet");
    draft = make_draft(a.str("draft"), a.str("model"), worker_options_from(a), runner.config().vocab_size);
    SpeculativeOptions so;
    so.k = static_cast<int32_t>(a.int64("draft-k"));
    so.adaptive = a.on("draft-k-adaptive");
    so.k_max = static_cast<int32_t>(a.int64("draft-k-max"));
    TESSERA_REQUIRE(so.k_max >= 1, ErrorKind::kInvalidInput, "--draft-k-max must be >= 1, got ", so.k_max);
    speculative = std::make_unique<SpeculativeGenerator>(runner, *draft, so);
    stats = speculative->generate(prompt, opt, on_token);
  } else {
    Generator generator(runner);
    stats = generator.generate(prompt, opt, on_token);
  }
  const std::string rest = out.finish();
  std::fwrite(rest.data(), 1, rest.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);

  if (a.on("show-ids")) {
    auto print_ids = [](const char* label, const std::vector<int32_t>& ids) {
      std::fprintf(stderr, "%s:", label);
      for (int32_t id : ids) std::fprintf(stderr, " %d", id);
      std::fputc('\n', stderr);
    };
    print_ids("prompt ids", prompt);
    print_ids("generated ids", generated);
  }
  if (a.on("timings")) {
    std::fprintf(stderr,
                 "prompt: %lld tokens in %.3f s (%.1f tok/s); generated: %lld tokens, decode %.1f tok/s; seed %llu; "
                 "threads %lld\n",
                 static_cast<long long>(stats.prompt_tokens), stats.prefill_seconds, stats.prefill_tokens_per_second(),
                 static_cast<long long>(stats.generated_tokens), stats.decode_tokens_per_second(),
                 static_cast<unsigned long long>(opt.seed), static_cast<long long>(a.int64("threads")));
    if (speculative) {
      const SpeculativeStats& ss = speculative->stats();
      std::fprintf(stderr,
                   "speculative (draft %s, K %s%d): acceptance %.3f (%lld of %lld draft tokens), %.2f tokens per "
                   "target pass (%lld passes), draft %.3f s, target %.3f s\n",
                   draft->name().c_str(), a.on("draft-k-adaptive") ? "adaptive, final " : "",
                   speculative->current_k(), ss.acceptance_rate(), static_cast<long long>(ss.accepted),
                   static_cast<long long>(ss.drafted), ss.tokens_per_target_pass(),
                   static_cast<long long>(ss.verify_steps), ss.draft_seconds, ss.target_seconds);
    }
  }
  return 0;
}

}  // namespace tessera::cli
