#include "tokenizer/utf8.h"

namespace tessera {

size_t utf8_next(std::string_view s, size_t i, uint32_t* cp) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + i;
  const size_t left = s.size() - i;
  const uint8_t b0 = p[0];
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  size_t n;
  uint32_t c, min;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2, c = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3, c = b0 & 0x0F, min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4, c = b0 & 0x07, min = 0x10000;
  } else {
    *cp = kInvalidCodePoint;
    return 1;
  }
  if (left < n) {
    *cp = kInvalidCodePoint;
    return 1;
  }
  for (size_t k = 1; k < n; ++k) {
    if ((p[k] & 0xC0) != 0x80) {
      *cp = kInvalidCodePoint;
      return 1;
    }
    c = (c << 6) | (p[k] & 0x3F);
  }
  // Overlong forms, surrogates and values above U+10FFFF are not well formed.
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
    *cp = kInvalidCodePoint;
    return 1;
  }
  *cp = c;
  return n;
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

size_t utf8_incomplete_tail(std::string_view s) {
  // Look back at most 3 bytes for a lead byte whose sequence runs past the end.
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto b = static_cast<uint8_t>(s[n - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking
    const size_t need = utf8_lead_length(b);
    if (need <= back) return 0;  // complete (or a lone byte)
    // Check that the bytes we have could still become well formed.
    std::string probe(s.substr(n - back));
    // Pad with the smallest continuation that keeps it valid if possible.
    while (probe.size() < need) probe.push_back(static_cast<char>(0x80));
    uint32_t cp;
    size_t len = utf8_next(probe, 0, &cp);
    if (len == need) return back;
    // 0x80 padding may be too small (e.g. E0 needs A0..BF); try the largest.
    probe = std::string(s.substr(n - back));
    while (probe.size() < need) probe.push_back(static_cast<char>(0xBF));
    len = utf8_next(probe, 0, &cp);
    return len == need ? back : 0;
  }
  return 0;
}

void utf8_sanitize_to(std::string& out, std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    const size_t len = utf8_next(s, i, &cp);
    if (cp == kInvalidCodePoint) {
      out += "\xEF\xBF\xBD";
    } else {
      out.append(s.substr(i, len));
    }
    i += len;
  }
}

}  // namespace tessera
