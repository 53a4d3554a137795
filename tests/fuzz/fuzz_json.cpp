// libFuzzer target: the JSON parser (safetensors headers, config.json, tokenizer.json,
// and the HTTP API later). Whatever parses must serialise and parse back equal.
#include <cstdlib>
#include <string_view>

#include "common/error.h"
#include "common/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const tessera::Json j = tessera::Json::parse(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
    const std::string once = j.dump();
    if (tessera::Json::parse(once, "dump").dump() != once) std::abort();
  } catch (const tessera::Error&) {
  }
  return 0;
}
