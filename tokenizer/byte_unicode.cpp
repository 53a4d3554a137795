#include "tokenizer/byte_unicode.h"

#include <array>
#include <string>

#include "tokenizer/utf8.h"

namespace tessera {
namespace {

bool printable(int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE); }

struct Table {
  std::array<uint32_t, 256> cp{};
  std::array<std::array<char, 4>, 256> utf8{};
  std::array<uint8_t, 256> len{};
  Table() {
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      cp[b] = printable(b) ? static_cast<uint32_t>(b) : next++;
      std::string s;
      utf8_append(s, cp[b]);
      len[b] = static_cast<uint8_t>(s.size());
      for (size_t i = 0; i < s.size(); ++i) utf8[b][i] = s[i];
    }
  }
};

// Immutable after construction (function-local static: thread-safe init).
const Table& table() {
  static const Table t;
  return t;
}

}  // namespace

std::string_view byte_to_unicode(uint8_t b) {
  const Table& t = table();
  return std::string_view(t.utf8[b].data(), t.len[b]);
}

int unicode_to_byte(uint32_t cp) {
  if (cp < 256) return printable(static_cast<int>(cp)) ? static_cast<int>(cp) : -1;
  if (cp < 256 + 68) {
    // cp - 256 is the index among the non-printable bytes, in byte order.
    const Table& t = table();
    for (int b = 0; b < 256; ++b) {
      if (t.cp[b] == cp) return b;
    }
  }
  return -1;
}

}  // namespace tessera
