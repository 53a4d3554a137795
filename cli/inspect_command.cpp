// tessera inspect PATH: what a checkpoint holds (format, architecture, metadata,
// every tensor with dtype, shape, size and offset), and the model config tessera
// derives from it when it is a supported family.
#include <iostream>

#include "checkpoint/inspect.h"
#include "checkpoint/open.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "model/config_loader.h"

namespace tessera::cli {

int run_inspect(int argc, char** argv) {
  Args a("inspect", "Lists a checkpoint's format, architecture, metadata and tensors (name, dtype, shape, bytes, "
                    "offset), then the model configuration tessera derives from it.");
  a.positional("PATH", "a .gguf, llama2.c .bin, .safetensors file, sharded index, or Hugging Face directory");
  if (!a.parse(argc, argv, 2)) {
    std::cout << a.help();
    return 0;
  }
  TESSERA_REQUIRE(a.positionals().size() == 1, ErrorKind::kInvalidInput, "usage: tessera inspect PATH");
  const std::string path = a.positionals()[0];
  checkpoint::inspect_checkpoint(path, std::cout);
  auto ck = checkpoint::open_checkpoint(path);
  try {
    const ModelConfig c = load_model_config(*ck);
    std::cout << "\nmodel config: " << c.summary() << "\n";
  } catch (const Error& e) {
    std::cout << "\nmodel config: not a model tessera can run: " << e.what() << "\n";
  }
  return 0;
}

}  // namespace tessera::cli
