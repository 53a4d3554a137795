#include "tokenizer/tokenizer.h"

#include <algorithm>

#include "common/error.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace tessera {

namespace detail {
int parse_byte_piece(std::string_view p) {
  if (p.size() != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>') return -1;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(p[3]), lo = hex(p[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}
}  // namespace detail

std::unique_ptr<Tokenizer> Tokenizer::create(Vocab vocab) {
  const std::string& src = vocab.source;
  TESSERA_REQUIRE(!vocab.tokens.empty(), ErrorKind::kInvalidInput, src, ": vocabulary is empty");
  const size_t n = vocab.tokens.size();
  TESSERA_REQUIRE(n < (1u << 30), ErrorKind::kInvalidInput, src, ": vocabulary too large (", n, ")");
  TESSERA_REQUIRE(vocab.scores.empty() || vocab.scores.size() == n, ErrorKind::kInvalidInput, src,
                  ": ", vocab.scores.size(), " scores for ", n, " tokens");
  TESSERA_REQUIRE(vocab.types.empty() || vocab.types.size() == n, ErrorKind::kInvalidInput, src,
                  ": ", vocab.types.size(), " token types for ", n, " tokens");
  auto check_id = [&](int32_t id, const char* what) {
    TESSERA_REQUIRE(id >= -1 && id < static_cast<int32_t>(n), ErrorKind::kInvalidInput, src, ": ",
                    what, " id ", id, " outside the vocabulary of ", n);
  };
  check_id(vocab.bos_id, "bos");
  check_id(vocab.eos_id, "eos");
  check_id(vocab.unk_id, "unk");
  check_id(vocab.pad_id, "pad");
  for (int32_t id : vocab.extra_eos_ids) check_id(id, "eos");
  TESSERA_REQUIRE(!vocab.add_bos || vocab.bos_id >= 0, ErrorKind::kInvalidInput, src,
                  ": add_bos is set but there is no bos token");
  TESSERA_REQUIRE(!vocab.add_eos || vocab.eos_id >= 0, ErrorKind::kInvalidInput, src,
                  ": add_eos is set but there is no eos token");
  std::unique_ptr<Tokenizer> tok = vocab.model == TokenizerModel::kSpm
                                       ? detail::make_spm_tokenizer(std::move(vocab))
                                       : detail::make_byte_bpe_tokenizer(std::move(vocab));
  tok->finish_init();
  return tok;
}

Tokenizer::Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {
  piece_to_id_.reserve(vocab_.tokens.size() * 2);
  for (size_t i = 0; i < vocab_.tokens.size(); ++i) {
    // First id wins for duplicate pieces (some vocabularies repeat unused slots).
    piece_to_id_.emplace(std::string_view(vocab_.tokens[i]), static_cast<int32_t>(i));
  }
}

Tokenizer::~Tokenizer() = default;

void Tokenizer::finish_init() {
  const int32_t n = vocab_.size();
  token_bytes_.resize(static_cast<size_t>(n));
  specials_by_byte_.assign(256, {});
  for (int32_t id = 0; id < n; ++id) {
    const TokenType t = vocab_.type(id);
    const std::string& piece = vocab_.tokens[static_cast<size_t>(id)];
    const bool special =
        t == TokenType::kControl || t == TokenType::kUnknown || t == TokenType::kUserDefined;
    // Control tokens decode to their text only with keep_control; the text is the piece.
    token_bytes_[static_cast<size_t>(id)] =
        (t == TokenType::kControl || t == TokenType::kUnknown) ? piece : piece_bytes(id);
    if (special && !piece.empty()) {
      specials_by_byte_[static_cast<uint8_t>(piece[0])].push_back(id);
    }
  }
  for (auto& list : specials_by_byte_) {
    std::stable_sort(list.begin(), list.end(), [&](int32_t a, int32_t b) {
      return vocab_.tokens[static_cast<size_t>(a)].size() > vocab_.tokens[static_cast<size_t>(b)].size();
    });
  }
}

size_t Tokenizer::find_special(std::string_view text, size_t pos, bool parse_special,
                               int32_t* id) const {
  for (size_t i = pos; i < text.size(); ++i) {
    const auto& list = specials_by_byte_[static_cast<uint8_t>(text[i])];
    for (int32_t cand : list) {
      if (!parse_special && vocab_.type(cand) != TokenType::kUserDefined) continue;
      const std::string& piece = vocab_.tokens[static_cast<size_t>(cand)];
      if (text.compare(i, piece.size(), piece) == 0) {
        *id = cand;
        return i;
      }
    }
  }
  return std::string_view::npos;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && vocab_.add_bos) out.push_back(vocab_.bos_id);
  bool after_special = true;
  size_t pos = 0;
  while (pos < text.size()) {
    int32_t special = -1;
    const size_t at = find_special(text, pos, parse_special, &special);
    const size_t end = at == std::string_view::npos ? text.size() : at;
    if (end > pos) {
      encode_fragment(text.substr(pos, end - pos), after_special, out);
      after_special = false;
    }
    if (at == std::string_view::npos) break;
    out.push_back(special);
    after_special = true;
    pos = at + vocab_.tokens[static_cast<size_t>(special)].size();
  }
  if (add_special && vocab_.add_eos) out.push_back(vocab_.eos_id);
  return out;
}

bool Tokenizer::is_control(int32_t id) const {
  if (id < 0 || id >= vocab_.size()) return false;
  const TokenType t = vocab_.type(id);
  return t == TokenType::kControl || t == TokenType::kUnknown || id == vocab_.bos_id ||
         id == vocab_.eos_id;
}

bool Tokenizer::is_eos(int32_t id) const {
  if (id < 0) return false;
  if (id == vocab_.eos_id) return true;
  return std::find(vocab_.extra_eos_ids.begin(), vocab_.extra_eos_ids.end(), id) !=
         vocab_.extra_eos_ids.end();
}

std::string Tokenizer::decode_token(int32_t id, bool keep_control) const {
  TESSERA_REQUIRE(id >= 0 && id < vocab_.size(), ErrorKind::kInvalidInput, "token id ", id,
                  " outside the vocabulary of ", vocab_.size());
  if (!keep_control && is_control(id)) return {};
  return token_bytes_[static_cast<size_t>(id)];
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool keep_control) const {
  std::string out;
  bool at_start = true;
  for (int32_t id : ids) {
    std::string piece = decode_token(id, keep_control);
    if (piece.empty()) continue;
    if (at_start && !is_control(id) && strips_leading_space() && piece[0] == ' ') piece.erase(0, 1);
    if (!is_control(id)) at_start = false;
    out += piece;
  }
  return out;
}

std::optional<int32_t> Tokenizer::piece_to_id(std::string_view piece) const {
  auto it = piece_to_id_.find(piece);
  if (it == piece_to_id_.end()) return std::nullopt;
  return it->second;
}

const std::string& Tokenizer::id_to_piece(int32_t id) const {
  TESSERA_REQUIRE(id >= 0 && id < vocab_.size(), ErrorKind::kInvalidInput, "token id ", id,
                  " outside the vocabulary of ", vocab_.size());
  return vocab_.tokens[static_cast<size_t>(id)];
}

// ---- StreamDecoder ----

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool keep_control)
    : tok_(tokenizer), keep_control_(keep_control) {}

std::string StreamDecoder::push(int32_t id) {
  std::string piece = tok_.decode_token(id, keep_control_);
  if (piece.empty()) return {};
  if (!tok_.is_control(id)) {
    if (at_start_ && tok_.strips_leading_space() && piece[0] == ' ') piece.erase(0, 1);
    at_start_ = false;
  }
  pending_ += piece;
  const size_t hold = utf8_incomplete_tail(pending_);
  std::string out;
  utf8_sanitize_to(out, std::string_view(pending_).substr(0, pending_.size() - hold));
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StreamDecoder::finish() {
  std::string out;
  utf8_sanitize_to(out, pending_);
  pending_.clear();
  return out;
}

}  // namespace tessera
