#include "tokenizer/pretokenize.h"

#include <cstdint>

#include "tokenizer/unicode_tables.h"
#include "tokenizer/utf8.h"

namespace tessera {
namespace {

// One decoded character: its byte offset and class bits.
enum : uint8_t { kL = 1, kN = 2, kS = 4 };
struct Char {
  uint32_t cp;
  uint32_t off;
  uint8_t cls;
};

void decode_chars(std::string_view text, std::vector<Char>& out) {
  out.clear();
  out.reserve(text.size() + 1);
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    const size_t len = utf8_next(text, i, &cp);
    uint8_t cls = 0;
    if (cp != kInvalidCodePoint) {
      if (unicode_is_letter(cp)) {
        cls = kL;
      } else if (unicode_is_number(cp)) {
        cls = kN;
      } else if (unicode_is_space(cp)) {
        cls = kS;
      }
    }
    out.push_back({cp, static_cast<uint32_t>(i), cls});
    i += len;
  }
  out.push_back({0, static_cast<uint32_t>(text.size()), 0});  // sentinel for offsets
}

// Matchers return the end index (in chars) of the match starting at i; the caller
// guarantees i < n. c has n+1 entries (a sentinel).
struct Matcher {
  const std::vector<Char>& c;
  size_t n;

  bool is(size_t i, uint8_t cls) const { return i < n && (c[i].cls & cls); }
  bool other(size_t i) const { return i < n && c[i].cls == 0; }  // [^\s\p{L}\p{N}]
  uint32_t cp(size_t i) const { return i < n ? c[i].cp : 0; }
  static uint32_t lower(uint32_t x) { return x >= 'A' && x <= 'Z' ? x + 32 : x; }

  // 's|'t|'re|'ve|'m|'ll|'d (optionally case-insensitive). 0 when no match.
  size_t contraction(size_t i, bool icase) const {
    if (cp(i) != '\'') return 0;
    auto f = [&](size_t k) { return icase ? lower(cp(k)) : cp(k); };
    const uint32_t a = f(i + 1);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    const uint32_t b = f(i + 2);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    return 0;
  }
  size_t run(size_t i, uint8_t cls) const {
    while (is(i, cls)) ++i;
    return i;
  }
  size_t run_other(size_t i) const {
    while (other(i)) ++i;
    return i;
  }
  // \s+(?!\S) then \s+ : whitespace run, leaving the last space for the next word
  // when a non-space follows.
  size_t spaces(size_t i) const {
    const size_t k = run(i, kS);
    if (k < n && k - i > 1) return k - 1;
    return k;
  }

  size_t gpt2(size_t i) const {
    if (size_t e = contraction(i, false)) return e;
    const size_t j = cp(i) == ' ' ? i + 1 : i;
    if (is(j, kL)) return run(j, kL);
    if (is(j, kN)) return run(j, kN);
    if (other(j)) return run_other(j);
    if (is(i, kS)) return spaces(i);
    return i + 1;  // unreachable: every char is L, N, S or other
  }

  size_t llama3(size_t i, bool digit_triples) const {
    if (size_t e = contraction(i, true)) return e;
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (is(i, kL)) return run(i, kL);
    if (cp(i) != '\r' && cp(i) != '\n' && !is(i, kN) && is(i + 1, kL)) return run(i + 1, kL);
    // \p{N}{1,3} (Qwen2: \p{N})
    if (is(i, kN)) {
      size_t e = i + 1;
      if (digit_triples) {
        while (e < n && e < i + 3 && is(e, kN)) ++e;
      }
      return e;
    }
    // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
    const size_t j = cp(i) == ' ' ? i + 1 : i;
    if (other(j)) {
      size_t e = run_other(j);
      while (e < n && (cp(e) == '\r' || cp(e) == '\n')) ++e;
      return e;
    }
    if (is(i, kS)) {
      // \s*[\r\n]+ : up to and including the last newline of the whitespace run.
      const size_t k = run(i, kS);
      for (size_t p = k; p > i; --p) {
        if (cp(p - 1) == '\r' || cp(p - 1) == '\n') return p;
      }
      return spaces(i);
    }
    return i + 1;
  }
};

void split(PreTokenizer kind, std::string_view text, std::vector<Char>& chars,
           std::vector<std::string_view>& words) {
  decode_chars(text, chars);
  const size_t n = chars.size() - 1;
  Matcher m{chars, n};
  for (size_t i = 0; i < n;) {
    size_t e;
    switch (kind) {
      case PreTokenizer::kLlama3: e = m.llama3(i, true); break;
      case PreTokenizer::kQwen2: e = m.llama3(i, false); break;
      default: e = m.gpt2(i); break;
    }
    words.push_back(text.substr(chars[i].off, chars[e].off - chars[i].off));
    i = e;
  }
}

}  // namespace

void pretokenize(PreTokenizer kind, std::string_view text, std::vector<std::string_view>& words) {
  if (text.empty()) return;
  std::vector<Char> chars;
  if (kind == PreTokenizer::kNone) {
    words.push_back(text);
    return;
  }
  if (kind != PreTokenizer::kSmolLM) {
    split(kind, text, chars, words);
    return;
  }
  // SmolLM: each \p{N} is its own word; GPT-2 rules on the text between digits.
  std::vector<Char> all;
  decode_chars(text, all);
  size_t seg = 0;
  for (size_t i = 0; i + 1 < all.size(); ++i) {
    if (!(all[i].cls & kN)) continue;
    if (all[i].off > seg) split(PreTokenizer::kGpt2, text.substr(seg, all[i].off - seg), chars, words);
    words.push_back(text.substr(all[i].off, all[i + 1].off - all[i].off));
    seg = all[i + 1].off;
  }
  if (seg < text.size()) split(PreTokenizer::kGpt2, text.substr(seg), chars, words);
}

}  // namespace tessera
