// Pre-tokenizers: hand-written matchers equivalent to the GPT-2 / Llama 3 / Qwen2
// split regexes (see PreTokenizer in vocab.h), without a regex library.
//
// Input may be invalid UTF-8: a bad byte is one "character" that is neither a
// letter, a number nor whitespace. The words returned cover the input exactly.
#pragma once

#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace tessera {

// Appends the words of text (views into text) to words.
void pretokenize(PreTokenizer kind, std::string_view text, std::vector<std::string_view>& words);

}  // namespace tessera
