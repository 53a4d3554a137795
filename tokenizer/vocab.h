// The tokenizer vocabulary as plain data: what every loader produces and what
// Tokenizer::create consumes. Loaders only fill this struct; all algorithmic
// decisions live in the tokenizer implementations.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tessera {

// Which merge algorithm the vocabulary is meant for.
enum class TokenizerModel {
  kSpm,      // SentencePiece BPE: "▁" for spaces, merge by piece score, <0xNN> byte fallback
  kByteBpe,  // GPT-2 style byte-level BPE: bytes_to_unicode alphabet, merge by rank
};

// Pre-tokenizer (regex split before byte-level BPE). Ignored by kSpm.
enum class PreTokenizer {
  kNone,    // the whole text is one word
  kGpt2,    // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kLlama3,  // (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|...
  kQwen2,   // kLlama3 with \p{N} (single digits) instead of \p{N}{1,3}
  kSmolLM,  // every \p{N} isolated, then kGpt2 on the rest
};

// SentencePiece piece types (also GGUF tokenizer.ggml.token_type).
enum class TokenType : uint8_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,      // <s>, </s>, <|eot_id|>: never produced by merging text
  kUserDefined = 4,  // matched verbatim in the text before merging
  kUnused = 5,
  kByte = 6,         // <0xNN>
};

struct Vocab {
  TokenizerModel model = TokenizerModel::kSpm;
  PreTokenizer pre = PreTokenizer::kNone;

  std::vector<std::string> tokens;  // id -> piece (SPM: "▁" for space; byte-BPE: GPT-2 alphabet)
  std::vector<float> scores;        // SPM merge priority (higher merges first); may be empty
  std::vector<TokenType> types;     // may be empty: all kNormal
  // Byte-level BPE merges in rank order (rank = index), as piece pairs.
  std::vector<std::pair<std::string, std::string>> merges;

  int32_t bos_id = -1;
  int32_t eos_id = -1;
  int32_t unk_id = -1;
  int32_t pad_id = -1;
  std::vector<int32_t> extra_eos_ids;  // also end generation (e.g. <|eot_id|>, <|eom_id|>)

  bool add_bos = false;           // encode(add_special=true) prepends bos_id
  bool add_eos = false;           // ... and appends eos_id
  bool add_dummy_prefix = false;  // SPM: prepend "▁" to the text (and strip it on decode)
  bool byte_fallback = true;      // SPM: unknown characters become <0xNN> tokens
  bool ignore_merges = false;     // byte-BPE: a word that is itself a token is not merged
  // SPM vocab from a llama2.c tok*.bin: llama2.c's own encode (a separate dummy-prefix
  // " " piece; merging over all pieces regardless of type). See docs/TOKENIZERS.md.
  bool llama2c_encode = false;

  std::string source;  // file the vocabulary was read from, for error messages

  int32_t size() const { return static_cast<int32_t>(tokens.size()); }
  TokenType type(int32_t id) const {
    return types.empty() ? TokenType::kNormal : types[static_cast<size_t>(id)];
  }
  float score(int32_t id) const { return scores.empty() ? 0.0f : scores[static_cast<size_t>(id)]; }
};

// Adds the 256 standard Llama 3 special tokens at ids 128000..128255
// (<|begin_of_text|>, <|end_of_text|>, <|start_header_id|>, <|eot_id|>, ...,
// <|reserved_special_token_N|>) and sets bos/eos/extra_eos. The vocab must have
// exactly 128000 tokens.
void add_llama3_special_tokens(Vocab& vocab);

}  // namespace tessera
