// tessera score: logits / log-probabilities of a token sequence under the model (one
// forward pass over all positions) — for evaluation harnesses and for comparing with
// other engines position by position.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/args.h"
#include "checkpoint/open.h"
#include "cli/cluster.h"
#include "cli/commands.h"
#include "cli/model_flags.h"
#include "common/error.h"
#include "coordinator/generator.h"
#include "coordinator/step_runner.h"
#include "coordinator/model_tokenizer.h"
#include "worker/worker.h"

namespace tessera::cli {

namespace {

std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::istringstream in(text);
  std::string item;
  while (in >> item) {
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    TESSERA_REQUIRE(end && *end == '\0' && v >= 0 && v < (1L << 31), ErrorKind::kInvalidInput,
                    "--tokens: '", item, "' is not a token id");
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

}  // namespace

int score_tokens(const Args& a, const std::vector<int32_t>& ids, StepRunner& runner);

int run_score(int argc, char** argv) {
  Args a("score", "Runs a token sequence through the model in one pass and reports, for every position, the "
                  "log-probability of the next token and the model's top choice; optionally writes all logits.");
  declare_model_flags(a);
  a.flag("text", "TEXT", "text to score (tokenised with BOS as the vocabulary asks)");
  a.flag("tokens", "IDS", "token ids to score, space separated (instead of --text)");
  a.flag("logits-out", "PATH", "write logits as float32 little-endian [positions][vocab]");
  if (!a.parse(argc, argv, 2)) {
    std::cout << a.help();
    return 0;
  }
  TESSERA_REQUIRE(a.has("model"), ErrorKind::kInvalidInput, "tessera score: --model PATH is required");
  TESSERA_REQUIRE(a.has("text") != a.has("tokens"), ErrorKind::kInvalidInput, "give exactly one of --text, --tokens");
  auto body = [&](StepRunner& runner, const checkpoint::Checkpoint& ck) -> int {
    std::vector<int32_t> ids;
    if (a.has("text")) {
      ids = load_model_tokenizer(a.str("model"), ck, a.str("tokenizer"))->encode(a.str("text"), true);
    } else {
      ids = parse_ids(a.str("tokens"));
    }
    return score_tokens(a, ids, runner);
  };
  if (launched_distributed(parallel_config_from(a))) {
    return run_cluster(nullptr, nullptr, cluster_options_from(a), [&](StepRunner& runner, const Topology&) {
      return body(runner, *checkpoint::open_checkpoint(a.str("model")));
    });
  }
  Worker worker(a.str("model"), worker_options_from(a));
  LocalStepRunner runner(worker);
  return body(runner, worker.checkpoint());
}

int score_tokens(const Args& a, const std::vector<int32_t>& ids, StepRunner& runner) {
  TESSERA_REQUIRE(!ids.empty(), ErrorKind::kInvalidInput, "nothing to score");
  const int64_t vocab = runner.config().vocab_size;
  for (int32_t id : ids)
    TESSERA_REQUIRE(id < vocab, ErrorKind::kInvalidInput, "token id ", id, " is outside the vocabulary of ", vocab);

  Generator gen(runner);
  const std::vector<float> logits = gen.score(ids);
  if (a.has("logits-out")) {
    std::ofstream out(a.str("logits-out"), std::ios::binary);
    out.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * 4));
    TESSERA_REQUIRE(out.good(), ErrorKind::kResource, a.str("logits-out"), ": write failed");
  }
  double total = 0;
  std::printf("%5s %8s %12s %8s\n", "pos", "next", "logprob", "argmax");
  for (size_t p = 0; p < ids.size(); ++p) {
    const float* row = logits.data() + p * vocab;
    double mx = row[0];
    int32_t best = 0;
    for (int64_t v = 1; v < vocab; ++v)
      if (row[v] > mx) mx = row[best = static_cast<int32_t>(v)];
    double z = 0;
    for (int64_t v = 0; v < vocab; ++v) z += std::exp(row[v] - mx);
    if (p + 1 < ids.size()) {
      const double lp = row[ids[p + 1]] - mx - std::log(z);
      total += lp;
      std::printf("%5zu %8d %12.5f %8d\n", p, ids[p + 1], lp, best);
    } else {
      std::printf("%5zu %8s %12s %8d\n", p, "-", "-", best);
    }
  }
  std::printf("total log-likelihood of %zu tokens: %.5f\n", ids.size() - 1, total);
  return 0;
}

}  // namespace tessera::cli
