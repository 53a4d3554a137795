// Internal: factories for the two tokenizer algorithms (spm_bpe.cpp, byte_bpe.cpp).
#pragma once

#include <memory>

#include "tokenizer/tokenizer.h"

namespace tessera::detail {

std::unique_ptr<Tokenizer> make_spm_tokenizer(Vocab vocab);
std::unique_ptr<Tokenizer> make_byte_bpe_tokenizer(Vocab vocab);

// Parses "<0xNN>" (exactly 6 chars); returns -1 when piece is not a byte token.
int parse_byte_piece(std::string_view piece);

}  // namespace tessera::detail
