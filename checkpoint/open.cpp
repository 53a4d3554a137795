#include "checkpoint/open.h"

#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "checkpoint/gguf_reader.h"
#include "checkpoint/llama2c_reader.h"
#include "checkpoint/safetensors_reader.h"
#include "common/error.h"

namespace tessera::checkpoint {

namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The only file in `dir` whose name ends with `suffix`; "" when none; throws when
// several match (the caller must then name one).
std::string only_file(const std::string& dir, std::string_view suffix) {
  std::vector<std::string> found;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && ends_with(name, suffix)) found.push_back(e.path().string());
  }
  if (found.empty()) return "";
  TESSERA_REQUIRE(found.size() == 1, ErrorKind::kInvalidInput, dir, ": ", found.size(),
                  " files end with ", suffix, "; name the one to open");
  return found[0];
}

std::string resolve_directory(const std::string& dir) {
  for (const char* name : {"model.safetensors.index.json", "model.safetensors"}) {
    const std::string p = dir + "/" + name;
    if (file_exists(p)) return p;
  }
  for (std::string_view suffix : {".safetensors.index.json", ".safetensors", ".gguf", ".bin"}) {
    std::string p = only_file(dir, suffix);
    if (!p.empty()) return p;
  }
  TESSERA_FAIL(ErrorKind::kNotFound, dir,
               ": no checkpoint in this directory (looked for *.safetensors.index.json, "
               "*.safetensors, *.gguf, *.bin)");
}

}  // namespace

std::unique_ptr<Checkpoint> open_checkpoint(const std::string& path_in) {
  struct stat st {};
  TESSERA_REQUIRE(::stat(path_in.c_str(), &st) == 0, ErrorKind::kNotFound, path_in,
                  ": no such file or directory");
  const std::string path = S_ISDIR(st.st_mode) ? resolve_directory(path_in) : path_in;

  if (ends_with(path, ".index.json")) return std::make_unique<SafetensorsReader>(path);

  uint8_t head[9] = {};
  size_t got = 0;
  {
    std::ifstream f(path, std::ios::binary);
    TESSERA_REQUIRE(f.good(), ErrorKind::kNotFound, path, ": cannot open");
    f.read(reinterpret_cast<char*>(head), sizeof(head));
    got = static_cast<size_t>(f.gcount());
  }
  uint32_t magic = 0;
  if (got >= 4) std::memcpy(&magic, head, 4);
  if (magic == kGgufMagic) return std::make_unique<GgufReader>(path);
  if (magic == kLlama2cMagic) return std::make_unique<Llama2cReader>(path);
  if (ends_with(path, ".safetensors")) return std::make_unique<SafetensorsReader>(path);
  if (ends_with(path, ".gguf")) return std::make_unique<GgufReader>(path);  // reports the magic
  if (got == 9) {
    uint64_t n = 0;
    std::memcpy(&n, head, 8);
    if (head[8] == '{' && n >= 2 && n <= kSafetensorsMaxHeader) {
      return std::make_unique<SafetensorsReader>(path);
    }
  }
  if (ends_with(path, ".bin")) return std::make_unique<Llama2cReader>(path);
  TESSERA_FAIL(ErrorKind::kUnsupported, path,
               ": unknown checkpoint format (not GGUF, safetensors or llama2.c by magic or "
               "extension)");
}

}  // namespace tessera::checkpoint
