// Tokenizer from GGUF metadata (tokenizer.ggml.*), through checkpoint::GgufMetadata.
#include "checkpoint/gguf_reader.h"
#include "common/error.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/loaders.h"

namespace tessera {
namespace {

PreTokenizer pre_from_name(const std::string& name, const std::string& file) {
  // Names as written by llama.cpp's convert_hf_to_gguf.py (tokenizer.ggml.pre).
  if (name == "default" || name.empty()) return PreTokenizer::kGpt2;
  if (name == "gpt-2" || name == "gpt2" || name == "starcoder" || name == "refact" ||
      name == "olmo" || name == "jais") {
    return PreTokenizer::kGpt2;
  }
  if (name == "llama3" || name == "llama-v3" || name == "llama-bpe" || name == "falcon3" ||
      name == "pixtral") {
    return PreTokenizer::kLlama3;
  }
  if (name == "qwen2" || name == "deepseek-r1-qwen" || name == "qwen35") return PreTokenizer::kQwen2;
  if (name == "smollm" || name == "smaug-bpe") return name == "smollm" ? PreTokenizer::kSmolLM
                                                                      : PreTokenizer::kLlama3;
  TESSERA_FAIL(ErrorKind::kUnsupported, file, ": tokenizer.ggml.pre \"", name,
               "\" is not supported (known: default, gpt-2, llama-bpe, qwen2, smollm)");
}

}  // namespace

Vocab load_gguf_tokenizer(const checkpoint::GgufMetadata& md) {
  const std::string& file = md.file();
  Vocab v;
  v.source = file;
  const std::string model = md.get_string("tokenizer.ggml.model");
  v.tokens = md.get_string_array("tokenizer.ggml.tokens");
  const auto n = v.tokens.size();
  if (md.has("tokenizer.ggml.scores")) {
    v.scores = md.get_f32_array("tokenizer.ggml.scores");
    TESSERA_REQUIRE(v.scores.size() == n, ErrorKind::kInvalidInput, file,
                    ": tokenizer.ggml.scores has ", v.scores.size(), " entries for ", n, " tokens");
  }
  if (md.has("tokenizer.ggml.token_type")) {
    const std::vector<int32_t> types = md.get_i32_array("tokenizer.ggml.token_type");
    TESSERA_REQUIRE(types.size() == n, ErrorKind::kInvalidInput, file,
                    ": tokenizer.ggml.token_type has ", types.size(), " entries for ", n, " tokens");
    v.types.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      TESSERA_REQUIRE(types[i] >= 0 && types[i] <= 6, ErrorKind::kInvalidInput, file,
                      ": tokenizer.ggml.token_type[", i, "] = ", types[i], " is not a token type");
      v.types.push_back(static_cast<TokenType>(types[i]));
    }
  }
  auto id = [&](const char* key) -> int32_t {
    const auto x = md.opt_i64(key);
    // Converters write "none" as -1 or as u32 0xFFFFFFFF.
    if (!x || *x < 0 || *x == 0xFFFFFFFFll) return -1;
    TESSERA_REQUIRE(*x >= 0 && *x < static_cast<int64_t>(n), ErrorKind::kInvalidInput, file, ": ",
                    key, " = ", *x, " outside the vocabulary of ", n);
    return static_cast<int32_t>(*x);
  };
  v.bos_id = id("tokenizer.ggml.bos_token_id");
  v.eos_id = id("tokenizer.ggml.eos_token_id");
  v.unk_id = id("tokenizer.ggml.unknown_token_id");
  v.pad_id = id("tokenizer.ggml.padding_token_id");
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    const int32_t e = id(key);
    if (e >= 0 && e != v.eos_id) v.extra_eos_ids.push_back(e);
  }
  if (model == "llama") {
    v.model = TokenizerModel::kSpm;
    v.add_dummy_prefix = md.opt_bool("tokenizer.ggml.add_space_prefix").value_or(true);
    v.add_bos = md.opt_bool("tokenizer.ggml.add_bos_token").value_or(true);
    v.byte_fallback = true;
    if (v.unk_id < 0 && n > 0 && v.tokens[0] == "<unk>") v.unk_id = 0;
  } else if (model == "gpt2") {
    v.model = TokenizerModel::kByteBpe;
    const std::string pre = md.opt_string("tokenizer.ggml.pre").value_or("default");
    v.pre = pre_from_name(pre, file);
    // llama.cpp: the Llama 3 tokenizer is used with ignore_merges.
    v.ignore_merges = v.pre == PreTokenizer::kLlama3 && pre != "smaug-bpe";
    v.add_bos = md.opt_bool("tokenizer.ggml.add_bos_token").value_or(false);
    const std::vector<std::string> merges = md.get_string_array("tokenizer.ggml.merges");
    v.merges.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) {
      const std::string& m = merges[i];
      const size_t sp = m.find(' ', 1);
      TESSERA_REQUIRE(sp != std::string::npos && sp + 1 < m.size(), ErrorKind::kInvalidInput, file,
                      ": tokenizer.ggml.merges[", i, "] \"", m, "\" is not \"A B\"");
      v.merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
    }
  } else {
    TESSERA_FAIL(ErrorKind::kUnsupported, file, ": tokenizer.ggml.model \"", model,
                 "\" is not supported (llama or gpt2)");
  }
  v.add_eos = md.opt_bool("tokenizer.ggml.add_eos_token").value_or(false) && v.eos_id >= 0;
  if (v.add_bos && v.bos_id < 0) v.add_bos = false;
  return v;
}

Vocab load_gguf_tokenizer(const std::string& gguf_path) {
  checkpoint::GgufReader reader(gguf_path);
  return load_gguf_tokenizer(reader.metadata());
}

}  // namespace tessera
