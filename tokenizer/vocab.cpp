#include "tokenizer/vocab.h"

#include "common/error.h"

namespace tessera {

void add_llama3_special_tokens(Vocab& vocab) {
  TESSERA_REQUIRE(vocab.tokens.size() == 128000, ErrorKind::kInvalidInput, vocab.source,
                  ": Llama 3 special tokens need a 128000-token base vocabulary, got ",
                  vocab.tokens.size());
  if (vocab.types.empty()) vocab.types.assign(vocab.tokens.size(), TokenType::kNormal);
  if (!vocab.scores.empty()) vocab.scores.resize(vocab.tokens.size() + 256, 0.0f);
  // Llama 3.1 / 3.2 layout (tokenizer_config.json of meta-llama/Llama-3.2-1B).
  const char* named[11] = {"<|begin_of_text|>",         "<|end_of_text|>",
                           "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
                           "<|finetune_right_pad_id|>",  "<|reserved_special_token_2|>",
                           "<|start_header_id|>",        "<|end_header_id|>",
                           "<|eom_id|>",                 "<|eot_id|>",
                           "<|python_tag|>"};
  for (int i = 0; i < 256; ++i) {
    vocab.tokens.push_back(i < 11 ? std::string(named[i])
                                  : "<|reserved_special_token_" + std::to_string(i - 11 + 3) + "|>");
    vocab.types.push_back(TokenType::kControl);
  }
  vocab.bos_id = 128000;
  vocab.eos_id = 128001;
  vocab.extra_eos_ids = {128008, 128009};  // <|eom_id|>, <|eot_id|>
}

}  // namespace tessera
