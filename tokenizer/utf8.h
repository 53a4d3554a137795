// UTF-8 helpers shared by the tokenizers. Text to encode may be invalid UTF-8:
// every helper treats a byte that does not start a complete, well-formed sequence
// as a unit of its own (length 1), so nothing here can read past the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tessera {

// A code point that cannot occur in valid UTF-8; returned for a bad byte.
inline constexpr uint32_t kInvalidCodePoint = 0xFFFFFFFFu;

// Length of the well-formed sequence starting at s[i] (1..4), or 1 when the bytes
// there are not a complete well-formed sequence. Sets *cp to the code point, or to
// kInvalidCodePoint for a bad byte.
size_t utf8_next(std::string_view s, size_t i, uint32_t* cp);

// Expected sequence length from a lead byte (1 for continuation/invalid bytes).
inline size_t utf8_lead_length(uint8_t b) {
  if (b < 0x80) return 1;
  if ((b & 0xE0) == 0xC0) return 2;
  if ((b & 0xF0) == 0xE0) return 3;
  if ((b & 0xF8) == 0xF0) return 4;
  return 1;
}

void utf8_append(std::string& out, uint32_t cp);

// Number of bytes at the end of s that are a proper prefix of a well-formed
// sequence (0..3): the streaming detokenizer holds these back.
size_t utf8_incomplete_tail(std::string_view s);

// Copies s to out, replacing each bad byte with U+FFFD.
void utf8_sanitize_to(std::string& out, std::string_view s);

}  // namespace tessera
