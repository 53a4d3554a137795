#include "coordinator/model_tokenizer.h"

#include <filesystem>
#include <vector>

#include "checkpoint/llama2c_reader.h"
#include "common/error.h"
#include "common/mapped_file.h"
#include "tokenizer/loaders.h"

namespace tessera {

namespace fs = std::filesystem;

std::unique_ptr<Tokenizer> load_model_tokenizer(const std::string& model_path, const checkpoint::Checkpoint& ck,
                                                const std::string& explicit_path) {
  if (!explicit_path.empty()) return load_tokenizer(explicit_path);
  if (ck.format() == "gguf") return Tokenizer::create(load_gguf_tokenizer(model_path));

  const fs::path p(model_path);
  const fs::path dir = fs::is_directory(p) ? p : p.parent_path();
  std::vector<std::string> looked;
  auto first_existing = [&](std::initializer_list<std::string> names) -> std::string {
    for (const std::string& n : names) {
      const std::string candidate = (dir / n).string();
      looked.push_back(candidate);
      if (file_exists(candidate)) return candidate;
    }
    return "";
  };
  if (const auto* l = dynamic_cast<const checkpoint::Llama2cReader*>(&ck)) {
    const int32_t vocab = l->config().vocab_size;
    const std::string path = first_existing({"tok" + std::to_string(vocab) + ".bin", "tokenizer.bin"});
    if (!path.empty()) return Tokenizer::create(load_llama2c_tokenizer(path, vocab));
  } else {
    const std::string path = first_existing({"tokenizer.json", "tokenizer.model"});
    if (!path.empty()) return load_tokenizer(path);
  }
  std::string list;
  for (const auto& s : looked) list += "\n  " + s;
  TESSERA_FAIL(ErrorKind::kNotFound, model_path, ": no tokenizer found; looked for:", list,
               "\npass --tokenizer PATH");
}

}  // namespace tessera
