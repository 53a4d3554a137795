// load_tokenizer: pick the tokenizer file of a model directory (or take a file).
#include <algorithm>
#include <filesystem>

#include "common/error.h"
#include "common/json.h"
#include "common/mapped_file.h"
#include "tokenizer/loaders.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// tokenizer_config.json: bos_token / eos_token (a string or {"content": ...}),
// add_bos_token, add_eos_token.
void apply_tokenizer_config(const std::string& path, Vocab& v) {
  const Json cfg = Json::parse(read_text_file(path), path);
  auto token_id = [&](const char* key) -> int32_t {
    const Json* j = cfg.find(key);
    if (!j) return -1;
    const Json* content = j->is_object() ? j->find("content") : j;
    if (!content || !content->is_string()) return -1;
    for (size_t i = 0; i < v.tokens.size(); ++i) {
      if (v.tokens[i] == content->as_string()) return static_cast<int32_t>(i);
    }
    return -1;
  };
  if (const int32_t b = token_id("bos_token"); b >= 0) v.bos_id = b;
  if (const int32_t e = token_id("eos_token"); e >= 0) {
    if (v.eos_id >= 0 && v.eos_id != e) v.extra_eos_ids.push_back(v.eos_id);
    v.eos_id = e;
  }
  if (const Json* j = cfg.find("add_bos_token"); j && j->is_bool()) v.add_bos = j->as_bool() && v.bos_id >= 0;
  if (const Json* j = cfg.find("add_eos_token"); j && j->is_bool()) v.add_eos = j->as_bool() && v.eos_id >= 0;
}

Vocab load_file(const std::string& path) {
  const std::string name = fs::path(path).filename().string();
  if (ends_with(name, ".json")) return load_hf_tokenizer_json(path);
  if (ends_with(name, ".model")) return load_sentencepiece_model(path);
  if (ends_with(name, ".gguf")) return load_gguf_tokenizer(path);
  if (ends_with(name, ".bin")) return load_llama2c_tokenizer(path);
  TESSERA_FAIL(ErrorKind::kUnsupported, path, ": not a known tokenizer file (tokenizer.json, "
               "tokenizer.model, *.gguf, llama2.c tok*.bin)");
}

Vocab load_dir(const std::string& dir) {
  const fs::path d(dir);
  auto has = [&](const char* f) { return fs::is_regular_file(d / f); };
  Vocab v;
  if (has("tokenizer.json")) {
    v = load_hf_tokenizer_json((d / "tokenizer.json").string());
  } else if (has("tokenizer.model")) {
    v = load_sentencepiece_model((d / "tokenizer.model").string());
  } else if (has("encoder.json") && has("vocab.bpe")) {
    const std::string enc = (d / "encoder.json").string(), bpe = (d / "vocab.bpe").string();
    v = load_bpe_encoder(enc, bpe);
    // 128000 regular pieces is the Llama 3 vocabulary.
    if (v.tokens.size() == 128000) v = load_llama3_encoder(enc, bpe);
  } else {
    std::vector<std::string> bins, ggufs;
    for (const auto& e : fs::directory_iterator(d)) {
      const std::string n = e.path().filename().string();
      if (n == "tokenizer.bin" || (n.starts_with("tok") && ends_with(n, ".bin"))) bins.push_back(e.path().string());
      if (ends_with(n, ".gguf")) ggufs.push_back(e.path().string());
    }
    std::sort(bins.begin(), bins.end());
    std::sort(ggufs.begin(), ggufs.end());
    if (!bins.empty()) {
      v = load_llama2c_tokenizer(bins.front());
    } else if (!ggufs.empty()) {
      v = load_gguf_tokenizer(ggufs.front());
    } else {
      TESSERA_FAIL(ErrorKind::kNotFound, dir, ": no tokenizer found (looked for tokenizer.json, "
                   "tokenizer.model, encoder.json + vocab.bpe, tokenizer.bin, tok*.bin, *.gguf)");
    }
  }
  if (has("tokenizer_config.json")) apply_tokenizer_config((d / "tokenizer_config.json").string(), v);
  return v;
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  TESSERA_REQUIRE(fs::exists(path), ErrorKind::kNotFound, path, ": no such file or directory");
  return Tokenizer::create(fs::is_directory(path) ? load_dir(path) : load_file(path));
}

}  // namespace tessera
