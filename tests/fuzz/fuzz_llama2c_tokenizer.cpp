// libFuzzer target: llama2.c tok*.bin loader, then encode / decode of a fixed text.
#include "common/error.h"
#include "tests/fuzz/fuzz_file.h"
#include "tokenizer/loaders.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tessera::fuzz::MemFile f(data, size);
  try {
    auto tok = tessera::Tokenizer::create(tessera::load_llama2c_tokenizer(f.path()));
    const auto ids = tok->encode("Once upon a time \xff\xfe");
    (void)tok->decode(ids);
  } catch (const tessera::Error&) {
  }
  return 0;
}
