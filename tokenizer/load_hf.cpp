// Hugging Face tokenizer.json (BPE models) and GPT-2 style encoder.json + vocab.bpe.
#include <algorithm>

#include "common/error.h"
#include "common/json.h"
#include "common/mapped_file.h"
#include "tokenizer/loaders.h"
#include "tokenizer/tokenizer_impl.h"

namespace tessera {
namespace {

// Fills v.tokens from a JSON object piece -> id; ids must be dense after added tokens.
void read_vocab_object(const Json& obj, const std::string& path, const char* field, Vocab& v) {
  const auto& members = obj.as_object(field);
  int64_t max_id = -1;
  for (const auto& [piece, id] : members) max_id = std::max(max_id, id.as_int(field));
  TESSERA_REQUIRE(max_id < (1 << 30), ErrorKind::kInvalidInput, path, ": ", field, " has id ",
                  max_id);
  if (static_cast<int64_t>(v.tokens.size()) <= max_id) v.tokens.resize(static_cast<size_t>(max_id + 1));
  for (const auto& [piece, idj] : members) {
    const int64_t id = idj.as_int(field);
    TESSERA_REQUIRE(id >= 0, ErrorKind::kInvalidInput, path, ": ", field, " \"", piece,
                    "\" has negative id ", id);
    v.tokens[static_cast<size_t>(id)] = piece;
  }
}

std::pair<std::string, std::string> split_merge(std::string_view line, const std::string& path,
                                                size_t index) {
  const size_t sp = line.find(' ');
  TESSERA_REQUIRE(sp != std::string_view::npos && sp > 0 && sp + 1 < line.size() &&
                      line.find(' ', sp + 1) == std::string_view::npos,
                  ErrorKind::kInvalidInput, path, ": merge ", index, " \"", line,
                  "\" is not two pieces separated by one space");
  return {std::string(line.substr(0, sp)), std::string(line.substr(sp + 1))};
}

// Finds the pre-tokenizer from tokenizer.json's pre_tokenizer (ByteLevel, or a
// Sequence with a Split regex we recognise).
PreTokenizer detect_pre(const Json* pre, const std::string& path) {
  if (!pre || pre->is_null()) return PreTokenizer::kNone;
  std::vector<const Json*> parts;
  if (const Json* list = pre->find("pretokenizers")) {
    for (const Json& p : list->as_array("pre_tokenizer.pretokenizers")) parts.push_back(&p);
  } else {
    parts.push_back(pre);
  }
  bool byte_level_regex = false, digits_isolated = false;
  std::string split_pattern;
  for (const Json* p : parts) {
    const Json* type = p->find("type");
    if (!type || !type->is_string()) continue;
    if (type->as_string() == "ByteLevel") {
      const Json* ur = p->find("use_regex");
      byte_level_regex = byte_level_regex || !ur || ur->as_bool("use_regex");
    } else if (type->as_string() == "Digits") {
      digits_isolated = true;
    } else if (type->as_string() == "Split") {
      if (const Json* pat = p->find("pattern")) {
        if (const Json* re = pat->find("Regex")) split_pattern = re->as_string("pattern.Regex");
      }
    }
  }
  if (!split_pattern.empty()) {
    if (split_pattern.find("\\p{N}{1,3}") != std::string::npos) return PreTokenizer::kLlama3;
    if (split_pattern.find("[^\\r\\n\\p{L}\\p{N}]?\\p{L}+") != std::string::npos)
      return PreTokenizer::kQwen2;
    if (split_pattern == "\\p{N}" || split_pattern == "\\d") return PreTokenizer::kSmolLM;
    if (split_pattern.find("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+") == 0) return PreTokenizer::kGpt2;
    TESSERA_FAIL(ErrorKind::kUnsupported, path, ": pre_tokenizer Split regex not supported: ",
                 split_pattern);
  }
  if (digits_isolated && byte_level_regex) return PreTokenizer::kSmolLM;
  if (byte_level_regex) return PreTokenizer::kGpt2;
  return PreTokenizer::kNone;
}

bool json_mentions(const Json* j, std::string_view type) {
  if (!j) return false;
  if (j->is_object()) {
    const Json* t = j->find("type");
    if (t && t->is_string() && t->as_string() == type) return true;
    for (const auto& [k, v] : j->as_object()) {
      if (json_mentions(&v, type)) return true;
    }
  } else if (j->is_array()) {
    for (const Json& v : j->as_array()) {
      if (json_mentions(&v, type)) return true;
    }
  }
  return false;
}

int32_t find_piece(const Vocab& v, std::string_view piece) {
  for (size_t i = v.tokens.size(); i-- > 0;) {
    if (v.tokens[i] == piece) return static_cast<int32_t>(i);
  }
  return -1;
}

}  // namespace

Vocab load_hf_tokenizer_json(const std::string& path) {
  const std::string text = read_text_file(path);
  const Json root = Json::parse(text, path);
  const Json* model = root.find("model");
  TESSERA_REQUIRE(model && model->is_object(), ErrorKind::kInvalidInput, path,
                  ": missing \"model\" object");
  const Json* type = model->find("type");
  TESSERA_REQUIRE(type && type->is_string() && type->as_string() == "BPE", ErrorKind::kUnsupported,
                  path, ": model.type ", type && type->is_string() ? type->as_string() : "(missing)",
                  " (only BPE is supported)");
  const Json* vocab = model->find("vocab");
  TESSERA_REQUIRE(vocab && vocab->is_object(), ErrorKind::kInvalidInput, path,
                  ": missing model.vocab object");
  Vocab v;
  v.source = path;
  read_vocab_object(*vocab, path, "model.vocab", v);
  const size_t base = v.tokens.size();
  // Added tokens may extend the vocabulary (Llama 3: 128000..128255).
  std::vector<std::pair<int64_t, bool>> added;  // id, special
  if (const Json* at = root.find("added_tokens"); at && at->is_array()) {
    for (const Json& t : at->as_array()) {
      const int64_t id = t.at("id").as_int("added_tokens[].id");
      const std::string& content = t.at("content").as_string("added_tokens[].content");
      TESSERA_REQUIRE(id >= 0 && id < (1 << 30), ErrorKind::kInvalidInput, path,
                      ": added token id ", id);
      if (static_cast<int64_t>(v.tokens.size()) <= id) v.tokens.resize(static_cast<size_t>(id + 1));
      v.tokens[static_cast<size_t>(id)] = content;
      const Json* sp = t.find("special");
      added.emplace_back(id, sp && sp->is_bool() && sp->as_bool());
    }
  }
  v.types.assign(v.tokens.size(), TokenType::kNormal);
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    if (v.tokens[i].empty()) v.types[i] = TokenType::kUnused;  // a hole in the id space
  }
  for (auto [id, special] : added) {
    v.types[static_cast<size_t>(id)] = special ? TokenType::kControl : TokenType::kUserDefined;
  }
  // Merges: "a b" strings (older files) or ["a", "b"] pairs (tokenizers >= 0.20).
  if (const Json* merges = model->find("merges")) {
    const auto& list = merges->as_array("model.merges");
    v.merges.reserve(list.size());
    for (size_t i = 0; i < list.size(); ++i) {
      if (list[i].is_string()) {
        v.merges.push_back(split_merge(list[i].as_string(), path, i));
      } else {
        const auto& pair = list[i].as_array("model.merges[]");
        TESSERA_REQUIRE(pair.size() == 2, ErrorKind::kInvalidInput, path, ": merge ", i,
                        " has ", pair.size(), " parts");
        v.merges.emplace_back(pair[0].as_string("model.merges[][0]"),
                              pair[1].as_string("model.merges[][1]"));
      }
    }
  }
  auto flag = [&](const char* key) {
    const Json* j = model->find(key);
    return j && j->is_bool() && j->as_bool();
  };
  v.ignore_merges = flag("ignore_merges");
  v.byte_fallback = flag("byte_fallback");
  if (const Json* unk = model->find("unk_token"); unk && unk->is_string()) {
    v.unk_id = find_piece(v, unk->as_string());
    if (v.unk_id >= 0) v.types[static_cast<size_t>(v.unk_id)] = TokenType::kUnknown;
  }
  const bool byte_level = json_mentions(root.find("pre_tokenizer"), "ByteLevel") ||
                          json_mentions(root.find("decoder"), "ByteLevel");
  if (byte_level) {
    v.model = TokenizerModel::kByteBpe;
    v.pre = detect_pre(root.find("pre_tokenizer"), path);
  } else {
    // SentencePiece-style BPE exported to tokenizer.json (Llama 2 "fast" tokenizer):
    // merge priority is the merge rank, so score = -rank of the merge forming a piece.
    v.model = TokenizerModel::kSpm;
    v.scores.assign(v.tokens.size(), 0.0f);
    std::vector<bool> scored(v.tokens.size(), false);
    std::unordered_map<std::string_view, int32_t> ids;
    for (size_t i = 0; i < v.tokens.size(); ++i) ids.emplace(v.tokens[i], static_cast<int32_t>(i));
    for (size_t r = 0; r < v.merges.size(); ++r) {
      auto it = ids.find(v.merges[r].first + v.merges[r].second);
      TESSERA_REQUIRE(it != ids.end(), ErrorKind::kInvalidInput, path, ": merge ", r, " \"",
                      v.merges[r].first, " ", v.merges[r].second,
                      "\" forms a piece that is not in the vocabulary");
      if (!scored[static_cast<size_t>(it->second)]) {
        v.scores[static_cast<size_t>(it->second)] = -static_cast<float>(r);
        scored[static_cast<size_t>(it->second)] = true;
      }
    }
    v.merges.clear();
    for (size_t i = 0; i < base; ++i) {
      if (detail::parse_byte_piece(v.tokens[i]) >= 0) v.types[i] = TokenType::kByte;
    }
    v.add_dummy_prefix = json_mentions(root.find("normalizer"), "Prepend") ||
                         json_mentions(root.find("pre_tokenizer"), "Metaspace");
  }
  // bos/eos are not in tokenizer.json itself; use the well-known names
  // (tokenizer_config.json, read by load_tokenizer, overrides them).
  for (const char* b : {"<s>", "<|begin_of_text|>"}) {
    if (v.bos_id < 0) v.bos_id = find_piece(v, b);
  }
  for (const char* e : {"</s>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>"}) {
    if (v.eos_id < 0) v.eos_id = find_piece(v, e);
  }
  for (const char* e : {"<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|endoftext|>"}) {
    const int32_t id = find_piece(v, e);
    if (id >= 0 && id != v.eos_id) v.extra_eos_ids.push_back(id);
  }
  v.add_bos = v.bos_id >= 0 && v.model == TokenizerModel::kSpm;
  if (v.bos_id >= 0 && v.tokens[static_cast<size_t>(v.bos_id)] == "<|begin_of_text|>") v.add_bos = true;
  return v;
}

Vocab load_bpe_encoder(const std::string& encoder_json, const std::string& vocab_bpe) {
  const std::string text = read_text_file(encoder_json);
  const Json root = Json::parse(text, encoder_json);
  Vocab v;
  v.source = encoder_json;
  v.model = TokenizerModel::kByteBpe;
  v.pre = PreTokenizer::kGpt2;
  read_vocab_object(root, encoder_json, "encoder", v);
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    TESSERA_REQUIRE(!v.tokens[i].empty(), ErrorKind::kInvalidInput, encoder_json, ": id ", i,
                    " is missing (ids must be 0..", v.tokens.size() - 1, ")");
  }
  v.types.assign(v.tokens.size(), TokenType::kNormal);
  const std::string merges = read_text_file(vocab_bpe);
  std::string_view rest(merges);
  size_t line_no = 0;
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    v.merges.push_back(split_merge(line, vocab_bpe, v.merges.size()));
  }
  v.source = encoder_json + " + " + vocab_bpe;
  const int32_t eot = find_piece(v, "<|endoftext|>");
  if (eot >= 0) {
    v.types[static_cast<size_t>(eot)] = TokenType::kControl;
    v.bos_id = v.eos_id = eot;
  }
  return v;
}

Vocab load_llama3_encoder(const std::string& encoder_json, const std::string& vocab_bpe) {
  Vocab v = load_bpe_encoder(encoder_json, vocab_bpe);
  v.pre = PreTokenizer::kLlama3;
  v.ignore_merges = true;
  add_llama3_special_tokens(v);
  v.add_bos = true;
  return v;
}

}  // namespace tessera
