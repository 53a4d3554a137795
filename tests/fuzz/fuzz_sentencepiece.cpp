// libFuzzer target: tokenizer.model (SentencePiece ModelProto) loader, then a
// tokenizer built from whatever loaded, encoding and decoding a fixed text.
#include "common/error.h"
#include "tests/fuzz/fuzz_file.h"
#include "tokenizer/loaders.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tessera::fuzz::MemFile f(data, size);
  try {
    auto tok = tessera::Tokenizer::create(tessera::load_sentencepiece_model(f.path()));
    const auto ids = tok->encode("Hello  world, caf\xc3\xa9 \xf0\x9f\x98\x80!");
    (void)tok->decode(ids);
  } catch (const tessera::Error&) {
  }
  return 0;
}
