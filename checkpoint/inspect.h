// The human-readable listing printed by `tessera inspect PATH`.
#pragma once

#include <ostream>
#include <string>

#include "checkpoint/checkpoint.h"

namespace tessera::checkpoint {

// Opens `path` (any format open_checkpoint accepts) and writes: format and version,
// files, architecture, metadata / hyperparameters (long arrays summarised as
// type[count] with the first few items), then one line per tensor (name, dtype,
// shape, bytes, offset) and the totals. Throws tessera::Error like open_checkpoint.
void inspect_checkpoint(const std::string& path, std::ostream& out);

// The same for an already opened checkpoint.
void inspect_checkpoint(const Checkpoint& ckpt, std::ostream& out);

}  // namespace tessera::checkpoint
