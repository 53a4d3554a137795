// libFuzzer target: GgufReader on arbitrary bytes, then every metadata getter.
#include <cstddef>
#include <cstdint>
#include <span>

#include "checkpoint/gguf_reader.h"
#include "common/error.h"
#include "tests/fuzz/fuzz_common.h"

using namespace tessera;
using namespace tessera::checkpoint;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    GgufReader r(std::span<const uint8_t>(data, size), "fuzz.gguf");
    volatile uint64_t sink = fuzz::touch_all(r);
    const GgufMetadata& md = r.metadata();
    for (const auto& [key, v] : md.entries()) {
      // Every getter either returns or throws tessera::Error.
      try { sink = sink + md.get_u32(key); } catch (const Error&) {}
      try { sink = sink + static_cast<uint64_t>(md.get_i64(key)); } catch (const Error&) {}
      try { sink = sink + (md.get_f32(key) > 0); } catch (const Error&) {}
      try { sink = sink + md.get_bool(key); } catch (const Error&) {}
      try { sink = sink + md.get_string(key).size(); } catch (const Error&) {}
      try { sink = sink + md.get_string_array(key).size(); } catch (const Error&) {}
      try { sink = sink + md.get_f32_array(key).size(); } catch (const Error&) {}
      try { sink = sink + md.get_i32_array(key).size(); } catch (const Error&) {}
      for (const GgufValue& e : md.elements(v, 4)) sink = sink + md.elements(e, 4).size();
    }
    (void)sink;
  } catch (const Error&) {
  }
  return 0;
}
