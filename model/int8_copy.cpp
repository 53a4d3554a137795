#include "model/int8_copy.h"

#include <vector>

#include "kernels/dtype.h"
#include "kernels/ops.h"
#include "kernels/q8_packed.h"

namespace tessera {

namespace {

void requantise(kernels::WeightMatrix& m, std::vector<std::unique_ptr<uint8_t[]>>& owned, Int8CopyStats& st) {
  if (m.data == nullptr) return;
  const bool dense = m.dtype == DType::kF32 || m.dtype == DType::kF16 || m.dtype == DType::kBF16;
  if (!dense || m.cols % kQuantBlock != 0) {
    ++st.kept;
    return;
  }
  const int64_t src_stride = m.row_stride != 0 ? m.row_stride : dtype_row_bytes(m.dtype, m.cols);
  const int64_t dst_stride = dtype_row_bytes(DType::kQ8_0, m.cols);
  auto buffer = std::make_unique<uint8_t[]>(static_cast<size_t>(dst_stride * m.rows));
  std::vector<float> row(static_cast<size_t>(m.cols));
  const auto* src = static_cast<const uint8_t*>(m.data);
  for (int64_t r = 0; r < m.rows; ++r) {
    kernels::dequantize_row(m.dtype, src + r * src_stride, row.data(), m.cols);
    kernels::quantize_row(DType::kQ8_0, row.data(), buffer.get() + r * dst_stride, m.cols);
  }
  ++st.requantised;
  st.bytes_before += static_cast<uint64_t>(dtype_row_bytes(m.dtype, m.cols) * m.rows);
  st.bytes_after += static_cast<uint64_t>(dst_stride * m.rows);
  if (kernels::q8_rows16_available()) {
    // The draft only runs matmuls on these: repack for the VNNI kernel (same values,
    // ~2x its compute rate, and a 2-16 token step reads W once; kernels/q8_packed.h).
    auto packed = std::make_unique<uint8_t[]>(static_cast<size_t>(kernels::q8_rows16_bytes(m.rows, m.cols)));
    m = kernels::pack_q8_rows16(buffer.get(), dst_stride, m.rows, m.cols, packed.get());
    owned.push_back(std::move(packed));
    ++st.packed;
    return;
  }
  m.dtype = DType::kQ8_0;
  m.data = buffer.get();
  m.row_stride = dst_stride;
  m.act_rounding = kernels::ActRounding::kNone;
  owned.push_back(std::move(buffer));
}

}  // namespace

Int8CopyStats make_int8_copy(LlamaWeights& w, std::vector<std::unique_ptr<uint8_t[]>>& owned) {
  Int8CopyStats st;
  for (LlamaLayerWeights& l : w.layers) {
    for (kernels::WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) requantise(*m, owned, st);
    // MoE: every expert this rank holds and the shared one. The router stays as it is
    // (E rows: cheap, and the draft then routes like the target).
    for (MoeExpertWeights* e = l.moe.experts.data(); e != l.moe.experts.data() + l.moe.experts.size(); ++e)
      for (kernels::WeightMatrix* m : {&e->gate, &e->up, &e->down}) requantise(*m, owned, st);
    for (kernels::WeightMatrix* m : {&l.moe.shared.gate, &l.moe.shared.up, &l.moe.shared.down}) requantise(*m, owned, st);
  }
  requantise(w.output, owned, st);  // a tied head gets its own copy; the embedding stays
  return st;
}

}  // namespace tessera
