// Flags every command that loads a model shares (--model, --tokenizer, --threads, ...).
#pragma once

#include "cli/args.h"
#include "worker/worker.h"

namespace tessera::cli {

void declare_model_flags(Args& args);
WorkerOptions worker_options_from(const Args& args);

}  // namespace tessera::cli
