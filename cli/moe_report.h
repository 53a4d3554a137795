// `tessera bench` on a mixture-of-experts model: per-layer expert load (tokens per
// expert, imbalance = max / mean) and the MoE step time split (router, dispatch,
// expert compute, combine), from this process's layers (docs/MOE.md).
#pragma once

#include "model/model.h"

namespace tessera::cli {

// Prints nothing for a dense model.
void print_moe_report(const DecoderModel& model);

}  // namespace tessera::cli
