// The coordinator's side of context parallelism (docs/CONTEXT_PARALLEL.md): before a
// step, size a sequence's block table for the new tokens; after it, advance the KV
// length of every CP rank. Both follow model/cp_layout.h, the placement the workers use.
// With cp = 1 this is the plain bookkeeping: the table covers [0, pos0 + n).
#pragma once

#include <cstdint>

#include "coordinator/kv_block_allocator.h"
#include "worker/step.h"

namespace tessera {

// seq.tokens and seq.pos0 are the step's; starts seq.cp_kv_lens (C zeros) at pos0 = 0.
// Grows the block table to cover the longest shard after the step; false (and no
// change to the table) when the pool has too few free blocks.
bool step_kv_ensure(KvBlockAllocator& allocator, SequenceStep& seq, int cp, int64_t block_size);

// After the step ran: adds the tokens each CP rank stored to seq.cp_kv_lens.
void step_kv_advance(SequenceStep& seq, int cp);

// A prefill chunk for C ranks: a multiple of 2C (so every chunk but the last splits
// into equal zigzag blocks and the shards stay balanced), at least 2C.
int64_t cp_prefill_chunk(int64_t chunk, int cp);

}  // namespace tessera
