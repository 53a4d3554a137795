// The OpenAI-compatible request schema: parsing and validation of /v1/completions and
// /v1/chat/completions bodies, and the JSON of responses, stream chunks and errors.
// Pure functions (no I/O), so the parser is unit-tested and fuzzed on its own.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::server {

// An error answered in OpenAI's format: {"error": {"message", "type", "param", "code"}}.
struct ApiError : std::runtime_error {
  ApiError(int status, std::string message, std::string param = {}, std::string type = "invalid_request_error",
           std::string code = {})
      : std::runtime_error(message), status(status), param(std::move(param)), type(std::move(type)),
        code(std::move(code)) {}
  int status;
  std::string param, type, code;
};
std::string error_json(const ApiError& e);

struct ChatMessage {
  std::string role;     // system, user, assistant
  std::string content;
};

struct ApiLimits {
  std::string model;             // the one model served
  int64_t max_context = 512;     // positions per sequence
  int64_t max_n = 16;            // choices per request
  int64_t max_logprobs = 20;
  int64_t max_stop = 4;
  int64_t max_prompts = 64;      // batch of prompts in one completions request
};

struct CompletionRequest {
  bool chat = false;
  std::string model;
  // completions: one entry per prompt (text or token ids); chat: the messages.
  std::vector<std::string> prompts;
  std::vector<std::vector<int32_t>> prompt_tokens;  // when given as token ids
  std::vector<ChatMessage> messages;
  std::optional<int64_t> max_tokens;  // absent: 16 (completions) / the rest of the context (chat)
  float temperature = 1.0f;
  float top_p = 1.0f;
  int32_t top_k = 0;
  std::optional<uint64_t> seed;
  int64_t n = 1;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  int32_t logprobs = -1;       // < 0: none; else the number of top alternatives
  bool echo = false;           // completions: prompt included (with logprobs when asked)
};

// Throws ApiError (status 400) naming the field for anything invalid. body must be
// valid UTF-8 JSON.
CompletionRequest parse_completion_request(std::string_view body, bool chat, const ApiLimits& limits);

// Checks shared by every front end (HTTP, Cap'n Proto) once a prompt is tokenised;
// each throws ApiError 400 naming the field.
//   token ids given directly must be inside the vocabulary;
void check_prompt_token_ids(const std::vector<int32_t>& ids, int32_t vocab_size);
//   the prompt must be non-empty, fit the context, and leave room for max_tokens.
void check_prompt_fits(size_t prompt_tokens, const CompletionRequest& r, int64_t max_context,
                       const char* prompt_field);
// max_tokens when the request does not say: the rest of the context for chat, at most
// 16 for completions (OpenAI's default).
int64_t default_max_tokens(const CompletionRequest& r, bool chat, int64_t max_context, size_t prompt_tokens);

// True when s is valid UTF-8 (no overlongs, surrogates or code points > U+10FFFF).
bool valid_utf8(std::string_view s);

// The plain fallback chat template and the common patterns, chosen by name:
// "plain", "chatml", "llama2", "llama3", "zephyr" (anything else renders as plain).
std::string render_chat(const std::vector<ChatMessage>& messages, std::string_view template_name,
                        std::string_view bos = "", std::string_view eos = "");
// The built-in renderer a checkpoint's Jinja chat template (GGUF
// tokenizer.chat_template, or chat_template in tokenizer_config.json) corresponds to,
// recognised by its markers, not run: "<|im_start|>" chatml, "<|start_header_id|>"
// llama3, "[INST]" llama2, "<|user|>" + "<|assistant|>" + "</s>"/eos_token zephyr;
// "plain" for anything else (and for ""). `tessera serve --chat-template auto`.
std::string chat_template_name(std::string_view jinja);

}  // namespace tessera::server
