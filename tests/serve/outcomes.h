// What scheduler tests collect per request from the events of schedule() / apply():
// the generated tokens, the finish reason, prompt logprobs and speculative counts.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <vector>

#include "coordinator/scheduler.h"

namespace tessera::testing {

struct Outcome {
  std::vector<int32_t> tokens;
  FinishReason finish = FinishReason::kNone;
  std::vector<PromptLogprob> prompt_logprobs;
  SpeculativeCounts spec;  // the latest cumulative counts
};

// Adds events to their requests' outcomes; an event after a request's finish fails.
inline void record_events(std::map<uint64_t, Outcome>& out, const std::vector<SequenceEvent>& events) {
  for (const auto& e : events) {
    Outcome& o = out[e.id];
    EXPECT_EQ(o.finish, FinishReason::kNone) << "event after finish, request " << e.id;
    if (e.token) o.tokens.push_back(e.token->token);
    for (const auto& p : e.prompt_logprobs) o.prompt_logprobs.push_back(p);
    if (e.speculative.verify_steps > 0) o.spec = e.speculative;
    if (e.finish != FinishReason::kNone) o.finish = e.finish;
  }
}

}  // namespace tessera::testing
