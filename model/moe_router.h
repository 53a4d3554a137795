// Routers of a mixture-of-experts layer, as pure functions of their inputs (no model,
// no rank): each fills a Routing, the k (expert, gate) pairs of every token. The MoE
// layer (model/moe_layer.h) runs one of them on every rank of a stage over the same
// tokens, so the assignment never depends on the split. docs/MOE.md, "Routers".
#pragma once

#include <cstdint>
#include <vector>

namespace tessera {

// Slot j of token t is (expert[t * k + j], gate[t * k + j]); slots are in the order
// the router picked them (highest gate first for top-k).
struct Routing {
  int64_t n_tokens = 0, k = 0;
  std::vector<int32_t> expert;  // [T][k] distinct experts per token
  std::vector<float> gate;      // [T][k] weights of the expert outputs
  void resize(int64_t t, int64_t k);
};

// Mixtral / Switch: p = softmax(logits[t]) over all E experts (f32), the k largest
// (ties: the lower expert id first); gates p_j, or p_j / sum of the k when `normalize`
// (Mixtral: softmax, top-k, divide by their sum, exactly as transformers does).
// logits: [T][E].
void moe_route_topk(const float* logits, int64_t n_tokens, int64_t n_experts, int64_t k, bool normalize,
                    Routing& out);

// Hash Layers (Roller et al. 2021), one of the Routing Networks paper's routers: the
// experts of a token are a fixed function of its id, independent of the input, the
// batch, the run and the rank: draws of splitmix64 seeded with the id, modulo E,
// skipping repeats, until k distinct experts. Each gate is 1 / k.
void moe_route_hash(const int32_t* token_ids, int64_t n_tokens, int64_t n_experts, int64_t k, Routing& out);

// splitmix64: advances `state` and returns the next output (Steele, Lea, Flood 2014).
uint64_t moe_splitmix64(uint64_t& state);

// S-BASE (Clark et al. 2022, after BASE Layers): a balanced top-1 assignment over the
// step's T tokens. Sinkhorn iterations (in log space) scale exp(logits) to a transport
// plan with rows summing to 1 and columns to T / E; tokens then go greedily to experts
// in descending plan order, each expert taking floor(T/E) tokens and T mod E of them
// one more, so every expert gets its share within one token. Gate: the softmax
// probability of the assigned expert, or 1 when `normalize`. The assignment depends
// on the whole batch (documented in docs/MOE.md).
void moe_route_balanced(const float* logits, int64_t n_tokens, int64_t n_experts, int64_t sinkhorn_iters,
                        bool normalize, Routing& out);

// Tokens per expert of a routing: counts[e] (size E).
std::vector<int64_t> moe_expert_counts(const Routing& r, int64_t n_experts);

}  // namespace tessera
