// GPT-2's bytes_to_unicode: a reversible map from the 256 byte values to printable
// code points (printable Latin-1 bytes map to themselves, the rest to U+0100...),
// so byte-level BPE vocabularies can be stored as text.
#pragma once

#include <cstdint>
#include <string_view>

namespace tessera {

// UTF-8 of the code point byte b maps to (a view into an immutable table).
std::string_view byte_to_unicode(uint8_t b);
// The byte a code point stands for, or -1 if cp is not in the alphabet.
int unicode_to_byte(uint32_t cp);

}  // namespace tessera
