// tessera: one binary, several subcommands (DESIGN.md, "Processes").
#include <glog/logging.h>

#include <cstring>
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "common/error.h"

namespace {

constexpr const char* kUsage =
    "usage: tessera <command> [flags]\n"
    "\n"
    "commands:\n"
    "  generate   generate text from a checkpoint (streams tokens to stdout)\n"
    "  inspect    list a checkpoint's architecture, metadata and tensors\n"
    "  bench      measure prefill/decode speed against the machine's limits\n"
    "  score      log-probabilities (and optionally all logits) of a token sequence\n"
    "  serve      OpenAI-compatible HTTP API with continuous batching\n"
    "\n"
    "Run 'tessera <command> --help' for the flags of a command.\n";

}  // namespace

int main(int argc, char** argv) {
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  try {
    if (command == "generate") return tessera::cli::run_generate(argc, argv);
    if (command == "inspect") return tessera::cli::run_inspect(argc, argv);
    if (command == "bench") return tessera::cli::run_bench(argc, argv);
    if (command == "score") return tessera::cli::run_score(argc, argv);
    if (command == "serve") return tessera::cli::run_serve(argc, argv);
    std::cerr << "tessera: unknown command '" << command << "'\n\n" << kUsage;
    return 2;
  } catch (const tessera::Error& e) {
    std::cout.flush();
    std::cerr << "\ntessera " << command << ": error (" << tessera::error_kind_name(e.kind()) << "): " << e.what()
              << "\n";
    return e.kind() == tessera::ErrorKind::kInvalidInput ? 2 : 1;
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "\ntessera " << command << ": internal error: " << e.what() << "\n";
    return 1;
  }
}
