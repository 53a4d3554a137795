// libFuzzer target: the OpenAI request parser of `tessera serve` (server/openai_api.h),
// for completions and chat bodies. Anything may be rejected, but only with ApiError
// (a 4xx naming a field), whose JSON must parse; nothing may crash or throw otherwise.
#include <cstdlib>
#include <string_view>

#include "common/error.h"
#include "common/json.h"
#include "server/openai_api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  tessera::server::ApiLimits limits;
  limits.model = "m";
  limits.max_context = 512;
  for (bool chat : {false, true}) {
    try {
      const tessera::server::CompletionRequest r = tessera::server::parse_completion_request(body, chat, limits);
      if (r.n < 1 || r.n > limits.max_n) std::abort();
      if (r.max_tokens && (*r.max_tokens < 0 || *r.max_tokens > limits.max_context)) std::abort();
      if (chat) (void)tessera::server::render_chat(r.messages, "chatml");
    } catch (const tessera::server::ApiError& e) {
      if (e.status < 400 || e.status > 499) std::abort();
      (void)tessera::Json::parse(tessera::server::error_json(e), "error");
    }
  }
  return 0;
}
