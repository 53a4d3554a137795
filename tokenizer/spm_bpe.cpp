// SentencePiece-style BPE (llama.cpp llm_tokenizer_spm, sentencepiece bpe_model.cc):
// spaces become "▁", a dummy "▁" is prepended, the text is split into UTF-8
// characters, and the adjacent pair whose concatenation is the highest-scoring piece
// is merged repeatedly (ties: leftmost). Characters that end up as no piece become
// <0xNN> byte tokens (byte fallback) or <unk>.
//
// Also the llama2.c variant (vocab.llama2c_encode): pieces hold plain spaces, the
// dummy prefix is a separate " " piece, and merges may form any piece. See
// docs/TOKENIZERS.md for how the two differ.
#include <algorithm>
#include <queue>
#include <unordered_map>

#include "common/error.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace tessera::detail {
namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581 "▁"

struct Symbol {
  int prev;
  int next;
  uint32_t start;  // byte offset into the normalized text (spm) ...
  uint32_t len;    // ... and length; len == 0 once merged away
  int32_t id;      // llama2c path: current token id
};

struct Bigram {
  float score;
  int left;
  int right;
  uint32_t size;  // merged length, to detect stale entries
  int32_t id;
};

struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

class SpmTokenizer final : public Tokenizer {
 public:
  explicit SpmTokenizer(Vocab vocab) : Tokenizer(std::move(vocab)) {
    for (int v = 0; v < 256; ++v) byte_ids_[v] = -1;
    for (int32_t id = 0; id < vocab_.size(); ++id) {
      const int b = parse_byte_piece(vocab_.tokens[static_cast<size_t>(id)]);
      const TokenType t = vocab_.type(id);
      if (b >= 0 && (t == TokenType::kByte || vocab_.types.empty() || vocab_.llama2c_encode) &&
          byte_ids_[b] < 0) {
        byte_ids_[b] = id;
      }
      // Does a mergeable piece have "▁" right after another character?
      const std::string& piece = vocab_.tokens[static_cast<size_t>(id)];
      for (size_t at = piece.find(kSpaceMark, 1); at != std::string::npos;
           at = piece.find(kSpaceMark, at + 1)) {
        if (mergeable(id) && !(at >= kSpaceMark.size() &&
                               piece.compare(at - kSpaceMark.size(), kSpaceMark.size(), kSpaceMark) == 0)) {
          space_starts_pieces_ = false;
        }
      }
    }
  }

 protected:
  void encode_fragment(std::string_view text, bool after_special,
                       std::vector<int32_t>& out) const override {
    if (vocab_.llama2c_encode) {
      encode_llama2c(text, after_special, out);
    } else {
      encode_spm(text, after_special, out);
    }
  }

  std::string piece_bytes(int32_t id) const override {
    const std::string& piece = vocab_.tokens[static_cast<size_t>(id)];
    const int b = parse_byte_piece(piece);
    if (b >= 0 && byte_ids_[b] == id) return std::string(1, static_cast<char>(b));
    std::string out;
    for (size_t i = 0; i < piece.size();) {
      if (piece.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
        out.push_back(' ');
        i += kSpaceMark.size();
      } else {
        out.push_back(piece[i++]);
      }
    }
    return out;
  }

 private:
  int32_t byte_ids_[256];
  bool space_starts_pieces_ = true;  // see encode_spm

  // Pieces a merge may produce (sentencepiece: NORMAL, USER_DEFINED, UNUSED).
  bool mergeable(int32_t id) const {
    const TokenType t = vocab_.type(id);
    return t == TokenType::kNormal || t == TokenType::kUserDefined || t == TokenType::kUnused ||
           t == TokenType::kUndefined;
  }

  int32_t lookup(std::string_view piece) const {
    auto it = piece_to_id_.find(piece);
    return it == piece_to_id_.end() ? -1 : it->second;
  }

  void push_bytes(std::string_view bytes, std::vector<int32_t>& out) const {
    if (!vocab_.byte_fallback) {
      if (vocab_.unk_id >= 0) out.push_back(vocab_.unk_id);
      return;
    }
    for (char c : bytes) {
      const int32_t id = byte_ids_[static_cast<uint8_t>(c)];
      if (id >= 0) {
        out.push_back(id);
      } else if (vocab_.unk_id >= 0) {
        out.push_back(vocab_.unk_id);
      }
    }
  }

  // Emits the ids for one final symbol; unused pieces are split back into the
  // pieces they were merged from (sentencepiece's resegmentation).
  void resegment(std::string_view piece,
                 const std::unordered_map<std::string_view, std::pair<uint32_t, uint32_t>>& rev,
                 std::string_view text, std::vector<int32_t>& out) const {
    const int32_t id = lookup(piece);
    if (id >= 0 && vocab_.type(id) != TokenType::kUnused &&
        vocab_.type(id) != TokenType::kControl && vocab_.type(id) != TokenType::kUnknown) {
      out.push_back(id);
      return;
    }
    auto it = rev.find(piece);
    if (it != rev.end()) {
      resegment(text.substr(it->second.first, it->second.second), rev, text, out);
      const size_t left_end = it->second.first + it->second.second;
      const size_t piece_end = static_cast<size_t>(piece.data() - text.data()) + piece.size();
      resegment(text.substr(left_end, piece_end - left_end), rev, text, out);
      return;
    }
    push_bytes(piece, out);
  }

  void encode_spm(std::string_view raw, bool after_special, std::vector<int32_t>& out) const {
    std::string text;
    text.reserve(raw.size() + 8);
    if (vocab_.add_dummy_prefix && after_special) text += kSpaceMark;
    for (char c : raw) {
      if (c == ' ') {
        text += kSpaceMark;
      } else {
        text.push_back(c);
      }
    }
    const std::string_view tv(text);
    if (!space_starts_pieces_) {
      encode_range(tv, 0, tv.size(), out);
      return;
    }
    // No piece has "▁" after another character, so no merge crosses a point where a
    // "▁" follows a non-"▁": encode word by word (small heaps, same result).
    size_t begin = 0;
    for (size_t i = 1; i < tv.size(); ++i) {
      if (tv.compare(i, kSpaceMark.size(), kSpaceMark) == 0 &&
          (i < kSpaceMark.size() || tv.compare(i - kSpaceMark.size(), kSpaceMark.size(), kSpaceMark) != 0)) {
        encode_range(tv, begin, i, out);
        begin = i;
      }
    }
    encode_range(tv, begin, tv.size(), out);
  }

  // Merges the characters of tv[begin, end) (offsets stay relative to tv).
  void encode_range(std::string_view tv, size_t begin, size_t end, std::vector<int32_t>& out) const {
    std::vector<Symbol> sym;
    sym.reserve(end - begin);
    for (size_t i = begin; i < end;) {
      uint32_t cp;
      const size_t len = std::min(utf8_next(tv, i, &cp), end - i);
      const int idx = static_cast<int>(sym.size());
      sym.push_back({idx - 1, idx + 1, static_cast<uint32_t>(i), static_cast<uint32_t>(len), -1});
      i += len;
    }
    if (sym.empty()) return;
    sym.back().next = -1;

    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> agenda;
    std::unordered_map<std::string_view, std::pair<uint32_t, uint32_t>> rev_merge;
    auto try_add = [&](int left, int right) {
      if (left < 0 || right < 0) return;
      const std::string_view piece = tv.substr(sym[left].start, sym[left].len + sym[right].len);
      const int32_t id = lookup(piece);
      if (id < 0 || !mergeable(id)) return;
      agenda.push({vocab_.score(id), left, right, static_cast<uint32_t>(piece.size()), id});
      if (vocab_.type(id) == TokenType::kUnused) {
        rev_merge[piece] = {sym[left].start, sym[left].len};
      }
    };
    for (size_t i = 1; i < sym.size(); ++i) try_add(static_cast<int>(i) - 1, static_cast<int>(i));

    while (!agenda.empty()) {
      const Bigram b = agenda.top();
      agenda.pop();
      Symbol& l = sym[b.left];
      Symbol& r = sym[b.right];
      // Stale: one side was merged into something else since this pair was queued.
      if (l.len == 0 || r.len == 0 || l.len + r.len != b.size || l.next != b.right) continue;
      l.len += r.len;
      r.len = 0;
      l.next = r.next;
      if (r.next >= 0) sym[r.next].prev = b.left;
      try_add(l.prev, b.left);
      try_add(b.left, l.next);
    }
    for (int i = 0; i >= 0; i = sym[i].next) {
      resegment(tv.substr(sym[i].start, sym[i].len), rev_merge, tv, out);
    }
  }

  // llama2.c run.c encode(): a " " dummy piece, one piece per code point (bytes+3
  // when absent), then merge the best-scoring adjacent pair whose concatenated
  // piece exists, over all pieces, until none is left.
  void encode_llama2c(std::string_view text, bool after_special,
                      std::vector<int32_t>& out) const {
    std::vector<Symbol> sym;
    sym.reserve(text.size() + 1);
    auto add = [&](int32_t id) {
      const int idx = static_cast<int>(sym.size());
      sym.push_back({idx - 1, idx + 1, static_cast<uint32_t>(idx), 1, id});
    };
    if (vocab_.add_dummy_prefix && after_special) {
      const int32_t space = lookup(" ");
      if (space >= 0) add(space);
    }
    for (size_t i = 0; i < text.size();) {
      // llama2.c groups a byte with the continuation bytes after it (at most 4).
      size_t len = 1;
      while (i + len < text.size() && len < 4 &&
             (static_cast<uint8_t>(text[i + len]) & 0xC0) == 0x80) {
        ++len;
      }
      const int32_t id = lookup(text.substr(i, len));
      if (id >= 0) {
        add(id);
      } else {
        for (size_t k = 0; k < len; ++k) {
          const int32_t b = byte_ids_[static_cast<uint8_t>(text[i + k])];
          add(b >= 0 ? b : vocab_.unk_id);
        }
      }
      i += len;
    }
    if (sym.empty()) return;
    sym.back().next = -1;

    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> agenda;
    std::string buf;
    auto try_add = [&](int left, int right) {
      if (left < 0 || right < 0 || sym[left].id < 0 || sym[right].id < 0) return;
      buf = vocab_.tokens[static_cast<size_t>(sym[left].id)];
      buf += vocab_.tokens[static_cast<size_t>(sym[right].id)];
      const int32_t id = lookup(buf);
      if (id < 0) return;
      // size holds the right symbol's id so a stale entry can be recognised.
      agenda.push({vocab_.score(id), left, right, static_cast<uint32_t>(sym[right].id), id});
    };
    for (size_t i = 1; i < sym.size(); ++i) try_add(static_cast<int>(i) - 1, static_cast<int>(i));
    while (!agenda.empty()) {
      const Bigram b = agenda.top();
      agenda.pop();
      Symbol& l = sym[b.left];
      Symbol& r = sym[b.right];
      if (l.len == 0 || r.len == 0 || l.next != b.right ||
          static_cast<uint32_t>(r.id) != b.size) {
        continue;
      }
      // The left symbol may have changed too: re-check the pair still forms b.id.
      buf = vocab_.tokens[static_cast<size_t>(l.id)];
      buf += vocab_.tokens[static_cast<size_t>(r.id)];
      if (lookup(buf) != b.id) continue;
      l.id = b.id;
      r.len = 0;
      l.next = r.next;
      if (r.next >= 0) sym[r.next].prev = b.left;
      try_add(l.prev, b.left);
      try_add(b.left, l.next);
    }
    for (int i = 0; i >= 0; i = sym[i].next) {
      if (sym[i].id >= 0) out.push_back(sym[i].id);
    }
  }
};

}  // namespace

std::unique_ptr<Tokenizer> make_spm_tokenizer(Vocab vocab) {
  return std::make_unique<SpmTokenizer>(std::move(vocab));
}

}  // namespace tessera::detail
