// libFuzzer target: arbitrary bytes (invalid UTF-8 included) through every tokenizer
// kind, with the real vocabularies from tests/data: encode must never crash, and
// decoding the ids of valid text must give the text back for the byte-level BPEs.
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "tokenizer/loaders.h"

namespace {

struct Tokenizers {
  std::unique_ptr<tessera::Tokenizer> spm, gpt2, llama3;
};

const Tokenizers& tokenizers() {
  static const Tokenizers t = [] {
    const std::string d = TESSERA_TEST_DATA "/tokenizers/";
    Tokenizers r;
    r.spm = tessera::load_tokenizer(d + "tokenizer-llama-spm/tokenizer.model");
    r.gpt2 = tessera::Tokenizer::create(tessera::load_gguf_tokenizer(d + "tokenizer-gpt2-bpe/ggml-vocab-gpt-2.gguf"));
    r.llama3 = tessera::Tokenizer::create(tessera::load_llama3_encoder(d + "tokenizer-llama3-bpe/encoder.json",
                                                                       d + "tokenizer-llama3-bpe/vocab.bpe"));
    return r;
  }();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const Tokenizers& t = tokenizers();
  for (const auto* tok : {t.spm.get(), t.gpt2.get(), t.llama3.get()}) {
    const auto ids = tok->encode(text, /*add_special=*/false, /*parse_special=*/true);
    (void)tok->decode(ids);
  }
  // Byte-level BPE is lossless on any bytes when special tokens are not parsed.
  const auto ids = t.gpt2->encode(text, false, false);
  if (t.gpt2->decode(ids) != text) std::abort();
  return 0;
}
