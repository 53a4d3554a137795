// `tessera bench` on a mixture-of-experts model: per-layer expert load (tokens per
// expert, imbalance = max / mean) over every rank, and, when the model runs in this
// process, the MoE time split (router, dispatch, expert compute, combine) per layer
// (docs/MOE.md, "Observability").
#pragma once

#include "coordinator/step_runner.h"
#include "model/model.h"

namespace tessera::cli {

// Prints nothing for a dense model. `local`: the model when it runs in this process
// (null under mpirun: the time split is per rank, see bench/moe_bench).
void print_moe_report(StepRunner& runner, const DecoderModel* local);

}  // namespace tessera::cli
