// LlamaModel under context parallelism: which rows this rank runs and how the rows
// whose logits are wanted reach every CP rank of the last stage (model/cp_layout.h).
#include <algorithm>
#include <cstring>
#include <numeric>

#include "common/error.h"
#include "model/llama.h"

namespace tessera {

int64_t LlamaModel::cp_layout(std::span<const ForwardSequence> batch, int64_t block_size) {
  const int r = cp_->rank(), c = cp_->size();
  cp_place_.clear();
  cp_rows_.clear();
  int64_t rows = 0;
  for (const ForwardSequence& s : batch) {
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    TESSERA_REQUIRE(static_cast<int>(s.cp_kv_lens.size()) == c, ErrorKind::kInvalidInput,
                    "context parallel over ", c, " ranks needs the KV length of every rank in the step, got ",
                    s.cp_kv_lens.size());
    const int64_t held = std::accumulate(s.cp_kv_lens.begin(), s.cp_kv_lens.end(), int64_t{0});
    TESSERA_REQUIRE(held == s.pos0, ErrorKind::kInvalidInput, "context parallel: the CP ranks' KV lengths add up to ",
                    held, " but the slice starts at position ", s.pos0);
    CpPlacement p = cp_place(n, c, s.cp_kv_lens);
    TESSERA_REQUIRE(static_cast<int64_t>(s.block_table.size()) * block_size >= s.cp_kv_lens[r] + p.stored(r),
                    ErrorKind::kInternal, "context parallel: block table too short for cp rank ", r, "'s shard");
    auto piece = [&](int64_t offset, int64_t length) {
      ForwardSequence f = s;
      f.tokens = s.tokens.subspan(static_cast<size_t>(offset), static_cast<size_t>(length));
      f.pos0 = s.pos0 + offset;
      cp_rows_.push_back(f);
    };
    if (p.replicated) {
      piece(0, n);
    } else {
      for (const CpSegment& seg : p.blocks[r]) piece(seg.offset, seg.length);
    }
    rows += p.rows(r);
    cp_place_.push_back(std::move(p));
  }
  return rows;
}

void LlamaModel::cp_gather_outputs(std::span<const ForwardSequence> batch, int64_t n_out) {
  const int64_t dim = config_.dim;
  const int r = cp_->rank();
  std::fill_n(proj_.data(), n_out * dim, 0.0f);
  int64_t out_row = 0, local0 = 0;  // local0: this sequence's first row on this rank
  for (size_t i = 0; i < batch.size(); ++i) {
    const ForwardSequence& s = batch[i];
    const CpPlacement& p = cp_place_[i];
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    for (int64_t tok = n - s.n_outputs; tok < n; ++tok, ++out_row) {
      int64_t local = -1;  // row of token `tok` on this rank, if this rank contributes it
      if (p.replicated) {
        if (r == p.owner) local = tok;  // every rank has it; one contributes
      } else {
        int64_t before = 0;
        for (const CpSegment& seg : p.blocks[r]) {
          if (tok >= seg.offset && tok < seg.offset + seg.length) local = before + tok - seg.offset;
          before += seg.length;
        }
      }
      if (local >= 0) std::copy_n(x_.data() + (local0 + local) * dim, dim, proj_.data() + out_row * dim);
    }
    local0 += p.rows(r);
  }
  // Exactly one rank contributes each row, so the sum is a copy.
  allreduce_sum(*comms_.cp, proj_.data(), static_cast<size_t>(n_out * dim));
}

}  // namespace tessera
