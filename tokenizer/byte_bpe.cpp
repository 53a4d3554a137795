// Byte-level BPE (GPT-2, Llama 3, Qwen2): pre-tokenize, map each byte of a word to
// the GPT-2 bytes_to_unicode alphabet, then apply merges in rank order (lowest
// rank first, ties leftmost) with a priority queue over a linked list of symbols.
// Merge lookups are keyed by the packed pair of token ids.
#include <algorithm>
#include <unordered_map>

#include "common/error.h"
#include "tokenizer/byte_unicode.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace tessera::detail {
namespace {

struct Merge {
  int32_t rank;
  int32_t result;
};

struct Sym {
  int32_t id;
  int prev;
  int next;
};

struct Candidate {
  int32_t rank;
  int left;
  int32_t left_id;
  int32_t right_id;
};

struct CandidateOrder {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

class ByteBpeTokenizer final : public Tokenizer {
 public:
  explicit ByteBpeTokenizer(Vocab vocab) : Tokenizer(std::move(vocab)) {
    const std::string& src = vocab_.source;
    for (int b = 0; b < 256; ++b) {
      const int32_t id = lookup(byte_to_unicode(static_cast<uint8_t>(b)));
      byte_ids_[b] = id;
    }
    merges_.reserve(vocab_.merges.size() * 2);
    std::string joined;
    for (size_t r = 0; r < vocab_.merges.size(); ++r) {
      const auto& [a, b] = vocab_.merges[r];
      const int32_t ia = lookup(a), ib = lookup(b);
      joined = a;
      joined += b;
      const int32_t ij = lookup(joined);
      TESSERA_REQUIRE(ia >= 0 && ib >= 0 && ij >= 0, ErrorKind::kInvalidInput, src, ": merge ", r,
                      " \"", a, " ", b, "\" names a token that is not in the vocabulary (\"",
                      ia < 0 ? a : ib < 0 ? b : joined, "\")");
      // First (lowest) rank wins when a pair is listed twice.
      merges_.emplace(pair_key(ia, ib), Merge{static_cast<int32_t>(r), ij});
    }
  }

 protected:
  void encode_fragment(std::string_view text, bool /*after_special*/,
                       std::vector<int32_t>& out) const override {
    std::vector<std::string_view> words;
    pretokenize(vocab_.pre, text, words);
    Scratch s;
    for (std::string_view w : words) encode_word(w, s, out);
  }

  std::string piece_bytes(int32_t id) const override {
    const std::string& piece = vocab_.tokens[static_cast<size_t>(id)];
    std::string out;
    out.reserve(piece.size());
    for (size_t i = 0; i < piece.size();) {
      uint32_t cp;
      const size_t len = utf8_next(piece, i, &cp);
      const int b = cp == kInvalidCodePoint ? -1 : unicode_to_byte(cp);
      if (b >= 0) {
        out.push_back(static_cast<char>(b));
      } else {
        out.append(piece, i, len);  // not in the alphabet (an added token): verbatim
      }
      i += len;
    }
    return out;
  }

 private:
  int32_t byte_ids_[256];
  std::unordered_map<uint64_t, Merge> merges_;

  struct Scratch {
    std::string mapped;
    std::vector<Sym> sym;
    std::vector<Candidate> heap;
  };

  int32_t lookup(std::string_view piece) const {
    auto it = piece_to_id_.find(piece);
    return it == piece_to_id_.end() ? -1 : it->second;
  }

  const Merge* find_merge(int32_t a, int32_t b) const {
    if (a < 0 || b < 0) return nullptr;
    auto it = merges_.find(pair_key(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  }

  void encode_word(std::string_view word, Scratch& s, std::vector<int32_t>& out) const {
    if (vocab_.ignore_merges) {
      s.mapped.clear();
      for (char c : word) s.mapped += byte_to_unicode(static_cast<uint8_t>(c));
      const int32_t id = lookup(s.mapped);
      if (id >= 0) {
        out.push_back(id);
        return;
      }
    }
    s.sym.clear();
    for (size_t i = 0; i < word.size(); ++i) {
      const int idx = static_cast<int>(i);
      s.sym.push_back({byte_ids_[static_cast<uint8_t>(word[i])], idx - 1, idx + 1});
    }
    s.sym.back().next = -1;
    if (s.sym.size() == 1) {
      emit(s.sym[0].id, out);
      return;
    }
    // A binary heap in s.heap (its buffer is reused across words).
    std::vector<Candidate>& heap = s.heap;
    heap.clear();
    auto try_add = [&](int left) {
      if (left < 0) return;
      const int right = s.sym[left].next;
      if (right < 0) return;
      const Merge* m = find_merge(s.sym[left].id, s.sym[right].id);
      if (m) {
        heap.push_back({m->rank, left, s.sym[left].id, s.sym[right].id});
        std::push_heap(heap.begin(), heap.end(), CandidateOrder{});
      }
    };
    for (int i = 0; i + 1 < static_cast<int>(s.sym.size()); ++i) try_add(i);
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), CandidateOrder{});
      const Candidate c = heap.back();
      heap.pop_back();
      Sym& l = s.sym[c.left];
      if (l.id != c.left_id || l.next < 0) continue;  // stale: left changed or was absorbed
      Sym& r = s.sym[l.next];
      if (r.id != c.right_id) continue;
      l.id = find_merge(c.left_id, c.right_id)->result;
      l.next = r.next;
      if (r.next >= 0) s.sym[r.next].prev = c.left;
      r.id = -2;  // absorbed
      try_add(l.prev);
      try_add(c.left);
    }
    for (int i = 0; i >= 0; i = s.sym[i].next) emit(s.sym[i].id, out);
  }

  void emit(int32_t id, std::vector<int32_t>& out) const {
    // A byte missing from the alphabet (a truncated vocab) becomes <unk> if there is one.
    if (id >= 0) {
      out.push_back(id);
    } else if (vocab_.unk_id >= 0) {
      out.push_back(vocab_.unk_id);
    }
  }
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_bpe_tokenizer(Vocab vocab) {
  return std::make_unique<ByteBpeTokenizer>(std::move(vocab));
}

}  // namespace tessera::detail
