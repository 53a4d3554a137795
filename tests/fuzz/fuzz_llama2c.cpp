// libFuzzer target: Llama2cReader on arbitrary bytes (legacy and "ak42" headers).
#include <cstddef>
#include <cstdint>
#include <span>

#include "checkpoint/llama2c_reader.h"
#include "common/error.h"
#include "tests/fuzz/fuzz_common.h"

using namespace tessera;
using namespace tessera::checkpoint;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    Llama2cReader r(std::span<const uint8_t>(data, size), "fuzz.bin");
    volatile uint64_t sink = fuzz::touch_all(r) + static_cast<uint64_t>(r.config().kv_dim());
    (void)sink;
  } catch (const Error&) {
  }
  return 0;
}
