// Hugging Face transformers' MixtralForCausalLM (tools/make_hf_mixtral_golden.py: a
// tiny random config, per-expert safetensors as save_pretrained writes them): logits
// and the greedy continuation. Splits are checked against this single-rank run by
// moe_mixtral_split (moe_splits_test.sh).
#include <gtest/gtest.h>

#include <cmath>

#include "common/json.h"
#include "common/mapped_file.h"
#include "coordinator/generator.h"
#include "checkpoint/open.h"
#include "model/config_loader.h"
#include "model/moe_loader.h"
#include "worker/worker.h"

namespace tessera {
namespace {

const std::string kDir = std::string(TESSERA_TEST_DATA) + "/hf_tiny_mixtral";

std::vector<int32_t> ids_of(const Json& arr) {
  std::vector<int32_t> ids;
  for (const Json& v : arr.as_array()) ids.push_back(static_cast<int32_t>(v.as_int()));
  return ids;
}

TEST(MixtralGolden, LogitsAndGreedyMatchTransformers) {
  const Json golden = Json::parse(read_text_file(kDir + "/golden.json"), "golden.json");
  const std::vector<int32_t> ids = ids_of(golden.at("input_ids"));
  WorkerOptions wo;
  wo.threads = 2;
  Worker worker(kDir, wo);
  ASSERT_EQ(worker.config().moe.n_experts, 8);
  ASSERT_EQ(worker.config().moe.top_k, 2);
  Generator gen(worker);
  const std::vector<float> got = gen.score(ids);
  MappedFile ref(kDir + "/logits.f32");
  ASSERT_EQ(ref.size(), got.size() * 4);
  const float* r = reinterpret_cast<const float*>(ref.data());
  double diff = 0, mag = 1;
  for (size_t i = 0; i < got.size(); ++i) {
    diff = std::max(diff, std::fabs(double(got[i]) - r[i]));
    mag = std::max(mag, std::fabs(double(r[i])));
  }
  // f32 on both sides; summation order differs only.
  EXPECT_LT(diff, 1e-4 * mag) << "max |ref| " << mag;
  std::printf("transformers Mixtral golden: max |logit diff| %.3g (max |logit| %.3g)\n", diff, mag);
  GenerateOptions opt;
  opt.max_new_tokens = 16;
  std::vector<int32_t> out;
  gen.generate(ids, opt, [&](int32_t id) {
    out.push_back(id);
    return true;
  });
  EXPECT_EQ(out, ids_of(golden.at("greedy").at("tokens")));
}

struct MoeGgufCase {
  const char* dtype;
  double tolerance;  // measured 2026-11-29: F32 1.2e-4, Q8_0 9.5e-7 (same Q8_0 activation blocks)
};
void PrintTo(const MoeGgufCase& c, std::ostream* os) { *os << c.dtype; }
class MoeGgufGolden : public ::testing::TestWithParam<MoeGgufCase> {};

TEST_P(MoeGgufGolden, LogitsAndGreedyMatchLlamaCpp) {
  // tools/make_moe_gguf_golden.py: llama.cpp's MoE tensors (3-D ffn_*_exps) and its
  // llama graph (softmax, top-2, renormalised); Q8_0 experts quantise activations to
  // Q8_0 blocks like llama.cpp.
  const std::string dt = GetParam().dtype;
  const std::string dir = std::string(TESSERA_TEST_DATA) + "/gguf_tiny_moe";
  const Json golden = Json::parse(read_text_file(dir + "/golden_" + dt + ".json"), "golden.json");
  const std::vector<int32_t> ids = ids_of(golden.at("tokens"));
  WorkerOptions wo;
  wo.threads = 2;
  Worker worker(dir + "/model_" + dt + ".gguf", wo);
  ASSERT_EQ(worker.config().moe.n_experts, 8);
  Generator gen(worker);
  const std::vector<float> got = gen.score(ids);
  MappedFile ref(dir + "/logits_" + dt + ".f32");
  ASSERT_EQ(ref.size(), got.size() * 4);
  const float* r = reinterpret_cast<const float*>(ref.data());
  double diff = 0;
  for (size_t i = 0; i < got.size(); ++i) diff = std::max(diff, std::fabs(double(got[i]) - r[i]));
  EXPECT_LT(diff, GetParam().tolerance);
  GenerateOptions opt;
  opt.max_new_tokens = 8;
  std::vector<int32_t> out;
  gen.generate(ids, opt, [&](int32_t id) {
    out.push_back(id);
    return true;
  });
  EXPECT_EQ(out, ids_of(golden.at("greedy").at("tokens")));
  std::printf("llama.cpp MoE golden %s: max |logit diff| %.3g\n", dt.c_str(), diff);
}

INSTANTIATE_TEST_SUITE_P(LlamaCpp, MoeGgufGolden,
                         ::testing::Values(MoeGgufCase{"f32", 5e-4}, MoeGgufCase{"q8_0", 1e-4}));

TEST(MixtralGolden, EachRankBindsOnlyItsExperts) {
  // EP rank 1 of 4 binds experts [2, 4) of a layer: it touches exactly their w1/w2/w3
  // tensors and the router, nothing of the other six experts.
  auto ck = checkpoint::open_checkpoint(kDir);
  const ModelConfig c = load_model_config(*ck);
  ShardSpec spec;
  spec.ep = 4;
  spec.ep_rank = 1;
  const ShardPlan plan = make_shard_plan(c, spec);
  ASSERT_EQ(plan.expert_begin, 2);
  ASSERT_EQ(plan.n_experts, 2);
  uint64_t want = ck->info("model.layers.1.block_sparse_moe.gate.weight").size;
  for (const int e : {2, 3})
    for (const char* w : {"w1", "w2", "w3"})
      want += ck->info("model.layers.1.block_sparse_moe.experts." + std::to_string(e) + "." + w + ".weight").size;
  ck->reset_bytes_touched();
  uint64_t bound = 0;
  const MoeLayerWeights lw =
      bind_moe_layer(*ck, TensorNaming::kHuggingFace, c, plan, 1, kernels::ActRounding::kNone, bound);
  EXPECT_EQ(ck->bytes_touched(), want);
  EXPECT_EQ(bound, want);
  ASSERT_EQ(lw.experts.size(), 2u);
  EXPECT_EQ(lw.experts[0].gate.data, ck->data("model.layers.1.block_sparse_moe.experts.2.w1.weight").data);
}

TEST(MoeGgufShard, EachRankMapsOnlyItsExpertRows) {
  // GGUF stacks the experts in 3-D tensors: EP rank 1 of 4 maps rows [2, 4) of each,
  // a quarter of their bytes, plus the whole router.
  auto ck = checkpoint::open_checkpoint(std::string(TESSERA_TEST_DATA) + "/gguf_tiny_moe/model_q8_0.gguf");
  const ModelConfig c = load_model_config(*ck);
  ShardSpec spec;
  spec.ep = 4;
  spec.ep_rank = 1;
  const ShardPlan plan = make_shard_plan(c, spec);
  uint64_t want = ck->info("blk.0.ffn_gate_inp.weight").size;
  for (const char* t : {"blk.0.ffn_gate_exps.weight", "blk.0.ffn_up_exps.weight", "blk.0.ffn_down_exps.weight"})
    want += ck->info(t).size / 4;
  ck->reset_bytes_touched();
  uint64_t bound = 0;
  const MoeLayerWeights lw = bind_moe_layer(*ck, TensorNaming::kGguf, c, plan, 0, kernels::ActRounding::kNone, bound);
  EXPECT_EQ(ck->bytes_touched(), want);
  ASSERT_EQ(lw.experts.size(), 2u);
  const checkpoint::TensorBytes down = ck->data("blk.0.ffn_down_exps.weight");
  EXPECT_EQ(lw.experts[1].down.data, down.data + 3 * (down.size / 8));  // expert 3 of 8
  EXPECT_EQ(lw.experts[1].down.dtype, DType::kQ8_0);
}

}  // namespace
}  // namespace tessera
