// Griffin / RecurrentGemma (docs/RECURRENT_GEMMA.md) against Hugging Face transformers'
// RecurrentGemmaForCausalLM (tests/data/hf_tiny_recurrent_gemma, made by
// tools/make_recurrent_gemma_golden.py, which also checks DeepMind's recurrentgemma
// package against the same logits), plus the state contract: chunked prefill equals one
// shot, a saved and restored slot continues exactly, memory does not grow with context.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/json.h"
#include "common/mapped_file.h"
#include "coordinator/generator.h"
#include "model/recurrent_gemma_config.h"
#include "sharding/plan.h"
#include "worker/worker.h"

namespace tessera {
namespace {

const std::string kDir = std::string(TESSERA_TEST_DATA) + "/hf_tiny_recurrent_gemma";

std::vector<int32_t> ids_of(const Json& arr) {
  std::vector<int32_t> ids;
  for (const Json& v : arr.as_array()) ids.push_back(static_cast<int32_t>(v.as_int()));
  return ids;
}

Json golden() { return Json::parse(read_text_file(kDir + "/golden.json"), "golden.json"); }

WorkerOptions options(int threads = 2) {
  WorkerOptions wo;
  wo.threads = threads;
  return wo;
}

std::vector<int32_t> greedy(Worker& worker, const std::vector<int32_t>& prompt, int64_t n, int64_t chunk = 512) {
  Generator gen(worker);
  GenerateOptions opt;
  opt.max_new_tokens = n;
  opt.prefill_chunk = chunk;
  std::vector<int32_t> out;
  gen.generate(prompt, opt, [&](int32_t id) {
    out.push_back(id);
    return true;
  });
  return out;
}

// One step of one sequence through the worker: the last position's logits.
std::vector<float> step(Worker& w, std::span<const int32_t> tokens, int64_t pos0, int32_t slot) {
  StepPlan plan;
  SequenceStep s;
  s.seq_id = 1;
  s.tokens.assign(tokens.begin(), tokens.end());
  s.pos0 = pos0;
  s.state_slot = slot;
  s.block_table.assign(static_cast<size_t>((pos0 + s.tokens.size()) / w.kv_shape().block_size + 1), 0);
  s.n_outputs = 1;
  s.return_logits = true;
  plan.sequences.push_back(s);
  return w.run_step(plan).outputs.at(0).logits;
}

int32_t argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// The published layouts (config.json of google/recurrentgemma-2b and -9b: top-level
// rope_theta and partial_rotary_factor, as transformers 4.x wrote them).
TEST(RecurrentGemma, PublishedConfigs) {
  const char* k2b = R"({"architectures": ["RecurrentGemmaForCausalLM"], "attention_bias": false,
    "attention_window_size": 2048, "block_types": ["recurrent", "recurrent", "attention"], "conv1d_width": 4,
    "embeddings_scale_by_sqrt_dim": true, "final_w_init_variance_scale": 0.07692307692307693, "head_dim": 256,
    "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 2560, "intermediate_size": 15360,
    "logits_soft_cap": 30.0, "lru_width": 2560, "model_type": "recurrent_gemma", "num_attention_heads": 10,
    "num_hidden_layers": 26, "num_key_value_heads": 1, "partial_rotary_factor": 0.5, "rms_norm_eps": 1e-06,
    "rope_theta": 10000.0, "torch_dtype": "bfloat16", "vocab_size": 256000, "w_init_variance_scale": 0.01})";
  const RecurrentGemmaConfig c2 = recurrent_gemma_config_from_json(Json::parse(k2b, "2b"), "2b");
  EXPECT_EQ(c2.base.ffn_dim, 7680);
  EXPECT_EQ(c2.base.rope_dim, 128);
  EXPECT_EQ(c2.base.embedding_scale, 50.5f);  // bf16(sqrt(2560)) = 50.5, not 50.596
  EXPECT_EQ(c2.lru_block(), 256);
  EXPECT_EQ(c2.window, 2048);
  int attention = 0;
  for (TemporalBlock b : c2.blocks) attention += b == TemporalBlock::kAttention;
  EXPECT_EQ(attention, 8);  // layers 2, 5, ..., 23
  std::string k9b = k2b;
  for (auto [from, to] : {std::pair<std::string, std::string>{"\"hidden_size\": 2560", "\"hidden_size\": 4096"},
                          {"\"intermediate_size\": 15360", "\"intermediate_size\": 24576"},
                          {"\"lru_width\": 2560", "\"lru_width\": 4096"},
                          {"\"num_attention_heads\": 10", "\"num_attention_heads\": 16"},
                          {"\"num_hidden_layers\": 26", "\"num_hidden_layers\": 38"}})
    k9b.replace(k9b.find(from), from.size(), to);
  const RecurrentGemmaConfig c9 = recurrent_gemma_config_from_json(Json::parse(k9b, "9b"), "9b");
  EXPECT_EQ(c9.base.ffn_dim, 12288);
  EXPECT_EQ(c9.base.embedding_scale, 64.0f);
  EXPECT_EQ(c9.lru_block(), 256);
  ShardSpec spec;  // 16 heads split over tp 8; 10 heads of the 2B do not
  spec.tp = 8;
  EXPECT_NO_THROW(make_shard_plan(c9.base, spec));
  EXPECT_THROW(make_shard_plan(c2.base, spec), Error);
}

TEST(RecurrentGemma, ConfigFromCheckpoint) {
  Worker w(kDir, options());
  const ModelConfig& c = w.config();
  EXPECT_EQ(c.architecture, "recurrent_gemma");
  EXPECT_TRUE(c.fixed_state);
  EXPECT_EQ(c.ffn_dim, 64);  // intermediate_size / 2
  EXPECT_EQ(c.rope_dim, 8);  // partial_rotary_factor 0.5 of head_dim 16
  EXPECT_EQ(c.embedding_scale, 8.0f);
  EXPECT_EQ(w.kv_shape().n_layers, 0) << "no paged KV for a fixed-state model";
  EXPECT_EQ(w.state_slots(), 8);
}

// The prompt (40 tokens) is five attention windows long, so the local mask and, in
// decode, the KV ring are exercised; greedy continuations come from HF's generate().
TEST(RecurrentGemma, LogitsAndGreedyMatchTransformers) {
  const Json g = golden();
  const std::vector<int32_t> ids = ids_of(g.at("input_ids"));
  Worker w(kDir, options());
  Generator gen(w);
  const std::vector<float> got = gen.score(ids);
  MappedFile ref(kDir + "/logits.f32");
  ASSERT_EQ(ref.size(), got.size() * 4);
  const float* r = reinterpret_cast<const float*>(ref.data());
  double max_abs = 0, max_ref = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    max_abs = std::max(max_abs, std::fabs(double(got[i]) - r[i]));
    max_ref = std::max(max_ref, std::fabs(double(r[i])));
  }
  std::printf("[ recurrent_gemma ] max |tessera - transformers| = %.3g (max |logit| %.3g)\n", max_abs, max_ref);
  EXPECT_LT(max_abs, 1e-4 * std::max(1.0, max_ref));
  EXPECT_EQ(greedy(w, ids, 24), ids_of(g.at("greedy").at("tokens")));
}

// Prefill in chunks of 1 (a pure decode loop), 3, 7 (crossing window boundaries) and
// one shot leave the same state: the same continuation and last logits.
TEST(RecurrentGemma, ChunkedPrefillEqualsOneShot) {
  const std::vector<int32_t> ids = ids_of(golden().at("input_ids"));
  Worker w(kDir, options(3));
  const std::vector<int32_t> want = greedy(w, ids, 12);
  for (int64_t chunk : {1, 3, 7, 64}) EXPECT_EQ(greedy(w, ids, 12, chunk), want) << "chunk " << chunk;
  const std::vector<float> one = step(w, ids, 0, 1);
  std::vector<float> last;
  for (size_t p = 0; p < ids.size(); p += 5)
    last = step(w, std::span(ids).subspan(p, std::min<size_t>(5, ids.size() - p)), static_cast<int64_t>(p), 2);
  ASSERT_EQ(last.size(), one.size());
  for (size_t i = 0; i < one.size(); ++i) ASSERT_NEAR(last[i], one[i], 1e-5) << "logit " << i;
}

// A 700-token prompt in one step runs the chunked parallel scan (3 threads: 3 time
// chunks) and the conv over whole chunks; feeding it one token per step runs the decode
// paths (one scan step, the in-place ring). Both must give the same last logits.
TEST(RecurrentGemma, LongPromptScanEqualsTokenByToken) {
  std::vector<int32_t> ids(700);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(3 + (i * 7919) % 317);
  Worker w(kDir, options(3));
  const std::vector<float> one = step(w, ids, 0, 0);
  std::vector<float> last;
  for (size_t p = 0; p < ids.size(); ++p) last = step(w, std::span(ids).subspan(p, 1), static_cast<int64_t>(p), 1);
  ASSERT_EQ(last.size(), one.size());
  double max_abs = 0;
  for (size_t i = 0; i < one.size(); ++i) max_abs = std::max(max_abs, std::fabs(double(last[i]) - one[i]));
  EXPECT_LT(max_abs, 1e-4) << "scan vs step-by-step";
  EXPECT_EQ(argmax(last), argmax(one));
}

// 100 greedy tokens in one go == 50, save the slot, clobber it with another sequence,
// restore it, 50 more. The continuation's logits are bit-identical.
TEST(RecurrentGemma, SavedStateContinuesExactly) {
  const std::vector<int32_t> prompt = {2, 17, 99, 203, 5, 64, 311, 42, 8, 150};
  Worker w(kDir, options());
  auto run = [&](std::vector<int32_t>& seq, int32_t slot, int64_t n, std::vector<float>* last) {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t pos0 = static_cast<int64_t>(seq.size()) - 1;
      *last = step(w, std::span(seq).subspan(pos0), pos0, slot);
      seq.push_back(argmax(*last));
    }
  };
  std::vector<float> logits_a, logits_b;
  std::vector<int32_t> a = prompt;
  step(w, std::span(a).first(a.size() - 1), 0, 0);
  run(a, 0, 100, &logits_a);

  std::vector<int32_t> b = prompt;
  step(w, std::span(b).first(b.size() - 1), 0, 0);
  run(b, 0, 50, &logits_b);
  w.copy_state(0, 5);  // save
  std::vector<int32_t> other = {2, 7, 7, 7, 300, 1, 9};
  step(w, other, 0, 0);  // another sequence takes slot 0 (pos0 = 0 resets it)
  StepPlan restore;      // the coordinator's way: a copy in the step plan, before the forward
  restore.state_copies.push_back({5, 0});
  w.run_step(restore);
  run(b, 0, 50, &logits_b);
  EXPECT_EQ(a, b);
  EXPECT_EQ(logits_a, logits_b);
  // Without the restore the continuation differs (the test can fail).
  std::vector<int32_t> c(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(prompt.size() + 50));
  step(w, other, 0, 0);
  std::vector<float> logits_c;
  run(c, 0, 50, &logits_c);
  EXPECT_NE(logits_a, logits_c);
  EXPECT_THROW(w.copy_state(0, 8), Error);
}

int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

// Memory is flat in the context: after a 4K-token prompt has sized every buffer, a
// 64K-token prompt adds less than 1 MiB of resident memory (a KV cache of this model
// would add 2 attention layers x 2 x 16 floats x 60K positions = 15 MiB).
TEST(RecurrentGemma, ResidentMemoryIsFlatInContextLength) {
  Worker w(kDir, options());
  Generator gen(w);
  GenerateOptions opt;
  opt.max_new_tokens = 2;
  auto prompt = [](int64_t n) {
    std::vector<int32_t> p(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<int32_t>(3 + (i * 7919) % 317);
    return p;
  };
  auto run = [&](int64_t n) {
    const std::vector<int32_t> p = prompt(n);
    int64_t got = 0;
    gen.generate(p, opt, [&](int32_t) { return ++got < 2; });
    return got;
  };
  ASSERT_EQ(run(4096), 2);
  const int64_t rss_4k = resident_bytes();
  ASSERT_EQ(run(65536), 2);
  const int64_t rss_64k = resident_bytes();
  std::printf("[ recurrent_gemma ] RSS after 4K: %.2f MiB, after 64K: %.2f MiB\n", rss_4k / 1048576.0,
              rss_64k / 1048576.0);
  EXPECT_LT(rss_64k - rss_4k, int64_t{1} << 20);
}

void write_file(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(RecurrentGemma, CheckpointThatDisagreesWithConfigNamesTheTensor) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("tessera_rg_bad_" + std::to_string(getpid()));
  fs::create_directories(dir);
  fs::copy_file(kDir + "/model.safetensors", dir / "model.safetensors", fs::copy_options::overwrite_existing);
  std::string cfg = read_text_file(kDir + "/config.json");
  cfg.replace(cfg.find("\"lru_width\": 80"), 15, "\"lru_width\": 96");
  write_file(dir / "config.json", cfg);
  try {
    Worker w(dir.string(), options());
    ADD_FAILURE() << "loaded a checkpoint whose tensors disagree with config.json";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("temporal_block.linear_x.weight has shape [80, 64], expected [96, 64]"),
              std::string::npos)
        << e.what();
  }
  cfg = read_text_file(kDir + "/config.json");
  cfg.replace(cfg.find("\"block_types\""), 13, "\"block_typez\"");
  write_file(dir / "config.json", cfg);
  EXPECT_THROW(
      {
        try {
          Worker w(dir.string(), options());
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("block_types"), std::string::npos) << e.what();
          throw;
        }
      },
      Error);
  fs::remove_all(dir);
}

TEST(RecurrentGemma, BadSlotAndSplitAreErrors) {
  Worker w(kDir, options());
  const std::vector<int32_t> t = {2, 3};
  EXPECT_THROW(step(w, t, 0, 8), Error);
  EXPECT_THROW(step(w, t, 0, -1), Error);
  try {
    ShardSpec spec;
    spec.tp = 3;
    Worker bad(kDir, options(), spec);
    ADD_FAILURE() << "tp = 3 accepted with 4 heads";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("heads"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tessera
