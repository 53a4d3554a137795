// Unicode character classes used by the pre-tokenizers (\p{L}, \p{N}, \s).
//
// The range tables are generated from Python's unicodedata by
// tools/gen_unicode_tables.py (kUnicodeVersion says which Unicode version); the
// classifier functions below add an ASCII fast path and binary search.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tessera {

namespace unicode_tables {
struct CodeRange {
  uint32_t first;
  uint32_t last;  // inclusive
};
extern const char kUnicodeVersion[];
extern const CodeRange kLetter[];
extern const size_t kLetterCount;
extern const CodeRange kNumber[];
extern const size_t kNumberCount;
extern const CodeRange kSpace[];
extern const size_t kSpaceCount;
}  // namespace unicode_tables

// General category L* (Lu, Ll, Lt, Lm, Lo).
bool unicode_is_letter(uint32_t cp);
// General category N* (Nd, Nl, No).
bool unicode_is_number(uint32_t cp);
// The White_Space property (regex \s).
bool unicode_is_space(uint32_t cp);

}  // namespace tessera
