// Flags every command that loads a model shares (--model, --tokenizer, --threads, ...).
#pragma once

#include "cli/args.h"
#include "cli/cluster.h"
#include "worker/worker.h"

namespace tessera::cli {

void declare_model_flags(Args& args);
WorkerOptions worker_options_from(const Args& args);
ParallelConfig parallel_config_from(const Args& args);
ClusterOptions cluster_options_from(const Args& args);

}  // namespace tessera::cli
