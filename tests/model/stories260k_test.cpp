// The bundled real model reproduces what its authors published (llama2.c run.c):
// greedy texts byte for byte, the seeded samples, and logits within 1e-4 of an
// independent float64 forward pass — from both the llama2.c .bin and the GGUF.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/mapped_file.h"
#include "coordinator/generator.h"
#include "coordinator/model_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "worker/worker.h"

namespace tessera {
namespace {

const std::string kDir = std::string(TESSERA_ASSETS) + "/models/stories260K/";

struct Case {
  const char* model;
  const char* reference;
  int steps;
  float temperature;
  float top_p;
  uint64_t seed;
};

// llama2.c run.c generate(): BOS, forced prompt, `steps` positions in all, stop when BOS
// is sampled; prints every piece after BOS (leading space after BOS dropped).
std::string generate_like_llama2c(const std::string& model, const std::string& prompt, int steps, float temperature,
                                  float top_p, uint64_t seed, int threads = 2) {
  WorkerOptions wo;
  wo.threads = threads;
  Worker worker(model, wo);
  auto tok = load_model_tokenizer(model, worker.checkpoint(), "");
  std::vector<int32_t> ids = tok->encode(prompt, true);
  GenerateOptions opt;
  opt.max_new_tokens = steps - static_cast<int64_t>(ids.size()) + 1;
  opt.sampling.kind = SamplerKind::kLlama2c;
  opt.sampling.temperature = temperature;
  opt.sampling.top_p = top_p;
  opt.seed = seed;
  opt.stop_tokens = {tok->bos_id()};
  StreamDecoder dec(*tok);
  std::string out;
  for (int32_t id : ids) out += dec.push(id);
  Generator gen(worker);
  gen.generate(ids, opt, [&](int32_t id) {
    out += dec.push(id);
    return true;
  });
  out += dec.finish();
  return out;
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.model << " -> " << c.reference; }

class Stories260K : public ::testing::TestWithParam<Case> {};

TEST_P(Stories260K, ReproducesPublishedText) {
  const Case& c = GetParam();
  const std::string expected = read_text_file(kDir + "reference/" + c.reference);
  const std::string got = generate_like_llama2c(kDir + c.model, "", c.steps, c.temperature, c.top_p, c.seed);
  EXPECT_EQ(got, expected);
}

INSTANTIATE_TEST_SUITE_P(
    Published, Stories260K,
    ::testing::Values(Case{"stories260K.bin", "greedy_n200.txt", 200, 0.0f, 0.9f, 1},
                      Case{"stories260K.bin", "greedy_n256.txt", 256, 0.0f, 0.9f, 1},
                      Case{"stories260K.gguf", "greedy_n200.txt", 200, 0.0f, 0.9f, 1},
                      Case{"stories260K.gguf", "greedy_n256.txt", 256, 0.0f, 0.9f, 1},
                      Case{"stories260K.bin", "t1.0_p1.0_seed42_n200.txt", 200, 1.0f, 1.0f, 42},
                      Case{"stories260K.bin", "t1.0_p0.95_seed42_n200.txt", 200, 1.0f, 0.95f, 42},
                      Case{"stories260K.gguf", "t1.0_p0.95_seed42_n200.txt", 200, 1.0f, 0.95f, 42}),
    [](const auto& info) {
      std::string name = std::string(info.param.model) + "_" + info.param.reference;
      for (char& ch : name)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return name;
    });

TEST(Stories260KPrompt, ContinuesOnceUponATime) {
  // The README's phrase: greedy continuation of "Once upon a time".
  const std::string got = generate_like_llama2c(kDir + "stories260K.gguf", "Once upon a time", 20, 0.0f, 0.9f, 1);
  EXPECT_EQ(got.rfind("Once upon a time, there was a little girl named Lily.", 0), 0u) << got;
}

class Stories260KLogits : public ::testing::TestWithParam<const char*> {};

TEST_P(Stories260KLogits, MatchReferenceWithin1e4) {
  const Json meta = Json::parse(read_text_file(kDir + "reference/logits_greedy_64.json"), "logits_greedy_64.json");
  std::vector<int32_t> ids;
  for (const Json& v : meta.at("input_ids").as_array()) ids.push_back(static_cast<int32_t>(v.as_int()));
  const int64_t vocab = meta.at("vocab").as_int();
  MappedFile ref(kDir + "reference/logits_greedy_64.f32");
  ASSERT_EQ(ref.size(), ids.size() * vocab * 4);
  const float* expected = reinterpret_cast<const float*>(ref.data());

  for (int threads : {1, 2}) {
    WorkerOptions wo;
    wo.threads = threads;
    Worker worker(kDir + GetParam(), wo);
    Generator gen(worker);
    const std::vector<float> logits = gen.score(ids);
    ASSERT_EQ(logits.size(), ids.size() * vocab);
    double max_err = 0;
    for (size_t i = 0; i < logits.size(); ++i) max_err = std::max(max_err, std::fabs(double(logits[i]) - expected[i]));
    EXPECT_LT(max_err, 1e-4) << "threads " << threads;
  }
}

INSTANTIATE_TEST_SUITE_P(BothFormats, Stories260KLogits, ::testing::Values("stories260K.bin", "stories260K.gguf"),
                         [](const auto& info) { return std::string(info.param).substr(12) == "bin" ? "bin" : "gguf"; });

TEST(Stories260KBatch, BatchedPrefillEqualsTokenByToken) {
  // Chunked prefill (chunk 7) and one-token steps give the same greedy continuation
  // as a single prefill step: the step plan's slices are position-exact.
  WorkerOptions wo;
  wo.threads = 2;
  Worker worker(kDir + "stories260K.bin", wo);
  auto tok = load_model_tokenizer(kDir + "stories260K.bin", worker.checkpoint(), "");
  const std::vector<int32_t> prompt = tok->encode("Once upon a time, there was a big dog named Max.", true);
  auto run = [&](int64_t chunk) {
    Generator gen(worker);
    GenerateOptions opt;
    opt.max_new_tokens = 40;
    opt.prefill_chunk = chunk;
    std::vector<int32_t> out;
    gen.generate(prompt, opt, [&](int32_t id) {
      out.push_back(id);
      return true;
    });
    return out;
  };
  const auto whole = run(512);
  EXPECT_EQ(run(7), whole);
  EXPECT_EQ(run(1), whole);
}

}  // namespace
}  // namespace tessera
