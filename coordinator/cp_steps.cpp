#include "coordinator/cp_steps.h"

#include <algorithm>

#include "common/error.h"
#include "model/cp_layout.h"

namespace tessera {

bool step_kv_ensure(KvBlockAllocator& allocator, SequenceStep& seq, int cp, int64_t block_size) {
  const int64_t n = static_cast<int64_t>(seq.tokens.size());
  if (cp <= 1) return allocator.ensure(seq.block_table, seq.pos0 + n, block_size);
  if (seq.pos0 == 0) seq.cp_kv_lens.assign(static_cast<size_t>(cp), 0);
  TESSERA_REQUIRE(static_cast<int>(seq.cp_kv_lens.size()) == cp, ErrorKind::kInternal, "sequence ", seq.seq_id,
                  " has ", seq.cp_kv_lens.size(), " CP KV lengths for cp = ", cp);
  const CpPlacement p = cp_place(n, cp, seq.cp_kv_lens);
  return allocator.ensure(seq.block_table, cp_slots_after(p, seq.cp_kv_lens), block_size);
}

void step_kv_advance(SequenceStep& seq, int cp) {
  if (cp <= 1) return;
  cp_advance(cp_place(static_cast<int64_t>(seq.tokens.size()), cp, seq.cp_kv_lens), seq.cp_kv_lens);
}

int64_t cp_prefill_chunk(int64_t chunk, int cp) {
  if (cp <= 1) return chunk;
  const int64_t unit = 2 * static_cast<int64_t>(cp);
  return std::max(unit, chunk / unit * unit);
}

}  // namespace tessera
