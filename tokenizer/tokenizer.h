// Text <-> token ids.
//
//   Vocab v = load_sentencepiece_model("tokenizer.model");      // or any loader in loaders.h
//   std::unique_ptr<Tokenizer> tok = Tokenizer::create(std::move(v));
//   std::vector<int32_t> ids = tok->encode("Hello world");      // BOS added if the vocab says so
//   std::string text = tok->decode(ids);
//
// A Tokenizer is immutable after construction and safe to use from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/vocab.h"

namespace tessera {

class Tokenizer {
 public:
  // Validates the vocab (throws tessera::Error naming vocab.source) and builds the
  // lookup tables for vocab.model.
  static std::unique_ptr<Tokenizer> create(Vocab vocab);

  virtual ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // add_special: prepend BOS / append EOS as the vocab asks (add_bos / add_eos).
  // parse_special: text equal to a control token (e.g. "<|eot_id|>") becomes that
  // token; otherwise it is encoded as ordinary text. User-defined tokens are always
  // matched. Invalid UTF-8 never throws: bad bytes are encoded as single bytes.
  std::vector<int32_t> encode(std::string_view text, bool add_special = true,
                              bool parse_special = false) const;

  // The bytes one token stands for: <0xNN> -> that byte, "▁" -> ' ', GPT-2 alphabet
  // -> bytes. Control tokens (BOS/EOS/...) give "" unless keep_control. The result
  // may be an incomplete UTF-8 sequence; see StreamDecoder.
  std::string decode_token(int32_t id, bool keep_control = false) const;

  // Concatenated token bytes. For SPM vocabularies with a dummy prefix the leading
  // space of the first text token is dropped, so decode(encode(s)) == s.
  // Invalid UTF-8 is kept as is (use StreamDecoder for always-valid output).
  std::string decode(std::span<const int32_t> ids, bool keep_control = false) const;

  bool is_eos(int32_t id) const;  // eos_id or one of extra_eos_ids
  bool is_control(int32_t id) const;
  int32_t vocab_size() const { return vocab_.size(); }
  int32_t bos_id() const { return vocab_.bos_id; }
  int32_t eos_id() const { return vocab_.eos_id; }
  int32_t unk_id() const { return vocab_.unk_id; }
  int32_t pad_id() const { return vocab_.pad_id; }
  std::optional<int32_t> piece_to_id(std::string_view piece) const;
  const std::string& id_to_piece(int32_t id) const;
  const Vocab& vocab() const { return vocab_; }
  // Whether decode drops the leading space of the first text token.
  bool strips_leading_space() const { return vocab_.add_dummy_prefix; }

 protected:
  explicit Tokenizer(Vocab vocab);

  // Encodes text that contains no special tokens. after_special: this fragment
  // starts the text or follows a special token (SPM adds its dummy prefix there).
  virtual void encode_fragment(std::string_view text, bool after_special,
                               std::vector<int32_t>& out) const = 0;
  // Bytes of a non-control token, computed once at construction.
  virtual std::string piece_bytes(int32_t id) const = 0;
  // Called by create() after construction (virtual calls are safe here).
  void finish_init();

  Vocab vocab_;
  // Keys view into vocab_.tokens (never modified after construction).
  std::unordered_map<std::string_view, int32_t> piece_to_id_;

 private:
  std::vector<std::string> token_bytes_;
  // Special (control/unknown/user-defined) token ids by first byte, longest first.
  std::vector<std::vector<int32_t>> specials_by_byte_;
  size_t find_special(std::string_view text, size_t pos, bool parse_special, int32_t* id) const;
};

// Incremental detokenizer for streaming: push() returns only complete, valid UTF-8.
// Bytes of a multi-byte character split across tokens are held back until the
// character is complete; bytes that can never become valid are replaced by U+FFFD.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool keep_control = false);
  std::string push(int32_t id);
  // Emits whatever is held back (an incomplete sequence becomes U+FFFD).
  std::string finish();

 private:
  const Tokenizer& tok_;
  bool keep_control_;
  bool at_start_ = true;
  std::string pending_;
};

}  // namespace tessera
