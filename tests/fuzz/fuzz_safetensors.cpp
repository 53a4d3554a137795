// libFuzzer target: SafetensorsReader on one arbitrary file image.
#include <cstddef>
#include <cstdint>
#include <span>

#include "checkpoint/safetensors_reader.h"
#include "common/error.h"
#include "tests/fuzz/fuzz_common.h"

using namespace tessera;
using namespace tessera::checkpoint;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    SafetensorsReader r(std::span<const uint8_t>(data, size), "fuzz.safetensors");
    volatile uint64_t sink = fuzz::touch_all(r) + r.metadata().size();
    (void)sink;
  } catch (const Error&) {
  }
  return 0;
}
