// Many sequences in one step (different lengths, micro-batches in flight) produce
// exactly what each sequence produces alone: the batched step plan is position-exact.
#include <gtest/gtest.h>

#include "coordinator/batch_generator.h"
#include "coordinator/generator.h"
#include "coordinator/model_tokenizer.h"
#include "worker/worker.h"

namespace tessera {
namespace {

TEST(BatchGenerator, EqualsOneSequenceAtATime) {
  const std::string model = std::string(TESSERA_ASSETS) + "/models/stories260K/stories260K.gguf";
  WorkerOptions wo;
  wo.threads = 2;
  wo.max_kv_tokens = 4096;
  Worker worker(model, wo);
  auto tok = load_model_tokenizer(model, worker.checkpoint(), "");
  const std::vector<std::string> texts = {"Once upon a time", "The dog", "Lily and Tom went to the park to play.",
                                          "A", "Sam had a big red ball and"};
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& t : texts) prompts.push_back(tok->encode(t, true));

  std::vector<std::vector<int32_t>> alone;
  for (const auto& p : prompts) {
    Generator gen(worker);
    GenerateOptions opt;
    opt.max_new_tokens = 30;
    std::vector<int32_t> out;
    gen.generate(p, opt, [&](int32_t id) {
      out.push_back(id);
      return true;
    });
    alone.push_back(out);
  }
  for (int micro_batches : {1, 2, 5}) {
    LocalStepRunner runner(worker);
    KvBlockAllocator allocator(runner.kv_blocks());
    BatchOptions bo;
    bo.max_new_tokens = 30;
    bo.micro_batches = micro_batches;
    BatchStats st;
    const auto together = generate_batch(runner, allocator, prompts, bo, &st);
    EXPECT_EQ(together, alone) << micro_batches << " micro-batches";
    EXPECT_EQ(st.generated_tokens, 5 * 30);
    EXPECT_EQ(allocator.free_blocks(), allocator.capacity()) << "blocks leaked";
  }
}

}  // namespace
}  // namespace tessera
