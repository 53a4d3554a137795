#include "model/moe_loader.h"

#include <string>
#include <vector>

#include "common/error.h"

namespace tessera {

namespace {

std::string shape_of(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// The tensor `name`, checked to have exactly `shape` and a usable weight dtype.
const checkpoint::TensorInfo& check(const checkpoint::Checkpoint& ck, const std::string& name,
                                    const std::vector<int64_t>& shape, const std::string& why) {
  TESSERA_REQUIRE(ck.contains(name), ErrorKind::kNotFound, ck.path(), ": tensor ", name, " is missing (", why, ")");
  const checkpoint::TensorInfo& t = ck.info(name);
  const DType dt = t.dtype();
  TESSERA_REQUIRE(t.shape == shape, ErrorKind::kInvalidInput, t.file, ": tensor ", name, " has shape ",
                  t.shape_string(), ", expected ", shape_of(shape), " (", why, ")");
  TESSERA_REQUIRE(dt != DType::kI32, ErrorKind::kUnsupported, t.file, ": tensor ", name,
                  " is an integer tensor; weights must be F32, F16, BF16, Q8_0, Q4_0 or Q4_1");
  TESSERA_REQUIRE(shape.back() % dtype_block_elems(dt) == 0, ErrorKind::kInvalidInput, t.file, ": tensor ", name,
                  ": row length ", shape.back(), " is not a multiple of the ", dtype_name(dt), " block size");
  return t;
}

kernels::WeightMatrix view(DType dt, const uint8_t* data, int64_t rows, int64_t cols, kernels::ActRounding r) {
  kernels::WeightMatrix w;
  w.dtype = dt;
  w.rows = rows;
  w.cols = cols;
  w.data = data;
  w.row_stride = dtype_row_bytes(dt, cols);
  w.act_rounding = r;
  return w;
}

// A whole 2-D matrix [rows][cols].
kernels::WeightMatrix matrix(const checkpoint::Checkpoint& ck, const std::string& name, int64_t rows, int64_t cols,
                             const std::string& why, kernels::ActRounding r, uint64_t& bytes) {
  const checkpoint::TensorInfo& t = check(ck, name, {rows, cols}, why);
  const checkpoint::RowSlice s = ck.rows(name, 0, rows);
  bytes += s.size;
  return view(t.dtype(), s.data, rows, cols, r);
}

// Experts [e0, e1) of a stacked GGUF tensor [E][rows][cols], one view per expert.
void stacked(const checkpoint::Checkpoint& ck, const std::string& name, int64_t E, int64_t rows, int64_t cols,
             int64_t e0, int64_t e1, const std::string& why, kernels::ActRounding r, uint64_t& bytes,
             std::vector<MoeExpertWeights>& out, kernels::WeightMatrix MoeExpertWeights::*member) {
  const checkpoint::TensorInfo& t = check(ck, name, {E, rows, cols}, why);
  const checkpoint::RowSlice s = ck.rows(name, e0, e1);
  bytes += s.size;
  for (int64_t e = e0; e < e1; ++e)
    out[e - e0].*member = view(t.dtype(), s.data + (e - e0) * s.row_bytes, rows, cols, r);
}

}  // namespace

MoeLayerWeights bind_moe_layer(const checkpoint::Checkpoint& ck, TensorNaming naming, const ModelConfig& c,
                               const ShardPlan& p, int64_t l, kernels::ActRounding r, uint64_t& bytes) {
  const MoeConfig& m = c.moe;
  const int64_t E = m.n_experts, ff = m.expert_ffn_dim, dim = c.dim;
  const int64_t e0 = p.expert_begin, e1 = p.expert_begin + p.n_experts;
  const std::string why = "expert_count " + std::to_string(E) + ", expert FFN " + std::to_string(ff) + ", dim " +
                          std::to_string(dim);
  MoeLayerWeights w;
  w.experts.resize(static_cast<size_t>(e1 - e0));
  const std::string n = std::to_string(l);
  if (naming == TensorNaming::kGguf) {
    const std::string b = "blk." + n + ".";
    w.router = matrix(ck, b + "ffn_gate_inp.weight", E, dim, why, r, bytes);
    stacked(ck, b + "ffn_gate_exps.weight", E, ff, dim, e0, e1, why, r, bytes, w.experts, &MoeExpertWeights::gate);
    stacked(ck, b + "ffn_up_exps.weight", E, ff, dim, e0, e1, why, r, bytes, w.experts, &MoeExpertWeights::up);
    stacked(ck, b + "ffn_down_exps.weight", E, dim, ff, e0, e1, why, r, bytes, w.experts, &MoeExpertWeights::down);
    if (m.shared_ffn_dim > 0) {
      const int64_t fs = m.shared_ffn_dim;
      const std::string ws = "shared expert FFN " + std::to_string(fs) + ", dim " + std::to_string(dim);
      w.shared.gate = matrix(ck, b + "ffn_gate_shexp.weight", fs, dim, ws, r, bytes);
      w.shared.up = matrix(ck, b + "ffn_up_shexp.weight", fs, dim, ws, r, bytes);
      w.shared.down = matrix(ck, b + "ffn_down_shexp.weight", dim, fs, ws, r, bytes);
    }
    return w;
  }
  const std::string b = "model.layers." + n + ".block_sparse_moe.";
  w.router = matrix(ck, b + "gate.weight", E, dim, why, r, bytes);
  for (int64_t e = e0; e < e1; ++e) {
    const std::string x = b + "experts." + std::to_string(e) + ".";
    MoeExpertWeights& ew = w.experts[e - e0];
    ew.gate = matrix(ck, x + "w1.weight", ff, dim, why, r, bytes);
    ew.up = matrix(ck, x + "w3.weight", ff, dim, why, r, bytes);
    ew.down = matrix(ck, x + "w2.weight", dim, ff, why, r, bytes);
  }
  // transformers also loads Mixtral's num_local_experts from config.json: an expert
  // tensor beyond it means the metadata and the tensors disagree.
  const std::string extra = b + "experts." + std::to_string(E) + ".w1.weight";
  TESSERA_REQUIRE(!ck.contains(extra), ErrorKind::kInvalidInput, ck.path(), ": tensor ", extra,
                  " exists but num_local_experts is ", E);
  return w;
}

}  // namespace tessera
