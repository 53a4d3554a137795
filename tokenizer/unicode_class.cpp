#include <algorithm>

#include "tokenizer/unicode_tables.h"

namespace tessera {
namespace {

bool in_table(uint32_t cp, const unicode_tables::CodeRange* table, size_t n) {
  // First range whose last >= cp; cp is inside iff that range starts at or before it.
  const auto* end = table + n;
  const auto* it = std::lower_bound(
      table, end, cp, [](const unicode_tables::CodeRange& r, uint32_t c) { return r.last < c; });
  return it != end && it->first <= cp;
}

}  // namespace

bool unicode_is_letter(uint32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return in_table(cp, unicode_tables::kLetter, unicode_tables::kLetterCount);
}

bool unicode_is_number(uint32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return in_table(cp, unicode_tables::kNumber, unicode_tables::kNumberCount);
}

bool unicode_is_space(uint32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
  return in_table(cp, unicode_tables::kSpace, unicode_tables::kSpaceCount);
}

}  // namespace tessera
