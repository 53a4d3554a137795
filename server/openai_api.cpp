#include "server/openai_api.h"

#include <cmath>
#include <set>

#include "common/error.h"
#include "common/json.h"

namespace tessera::server {

std::string error_json(const ApiError& e) {
  Json err = Json::object();
  err.set("message", Json::string(e.what()));
  err.set("type", Json::string(e.type));
  err.set("param", e.param.empty() ? Json() : Json::string(e.param));
  err.set("code", e.code.empty() ? Json() : Json::string(e.code));
  Json root = Json::object();
  root.set("error", std::move(err));
  return root.dump();
}

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int n;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) n = 1, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) n = 2, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) n = 3, cp = c & 0x07;
    else return false;
    for (int k = 1; k <= n; ++k) {
      if (i + static_cast<size_t>(k) >= s.size()) return false;
      const auto d = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)) return false;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += static_cast<size_t>(n) + 1;
  }
  return true;
}

namespace {

[[noreturn]] void bad(const std::string& param, const std::string& message) { throw ApiError(400, message, param); }

double number(const Json& v, const std::string& field) {
  if (!v.is_number()) bad(field, "'" + field + "' must be a number");
  const double d = v.as_double(field);
  if (!std::isfinite(d)) bad(field, "'" + field + "' must be finite");
  return d;
}

int64_t integer(const Json& v, const std::string& field, int64_t lo, int64_t hi) {
  if (!v.is_number()) bad(field, "'" + field + "' must be an integer");
  const double d = v.as_double(field);
  if (!std::isfinite(d) || d != std::floor(d)) bad(field, "'" + field + "' must be an integer");
  if (d < static_cast<double>(lo) || d > static_cast<double>(hi))
    bad(field, "'" + field + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                   Json::number(d).dump());
  return v.is_integer() ? v.as_int(field) : static_cast<int64_t>(d);
}

bool boolean(const Json& v, const std::string& field) {
  if (!v.is_bool()) bad(field, "'" + field + "' must be a boolean");
  return v.as_bool(field);
}

const std::string& text(const Json& v, const std::string& field) {
  if (!v.is_string()) bad(field, "'" + field + "' must be a string");
  return v.as_string(field);
}

std::vector<int32_t> token_ids(const Json& v, const std::string& field) {
  std::vector<int32_t> ids;
  for (const Json& t : v.as_array(field)) ids.push_back(static_cast<int32_t>(integer(t, field, 0, (1 << 30))));
  return ids;
}

}  // namespace

CompletionRequest parse_completion_request(std::string_view body, bool chat, const ApiLimits& limits) {
  if (!valid_utf8(body)) throw ApiError(400, "the request body is not valid UTF-8", "body");
  Json root;
  try {
    root = Json::parse(body, "request body");
  } catch (const Error& e) {
    throw ApiError(400, std::string("malformed JSON: ") + e.what(), "body");
  }
  if (!root.is_object()) throw ApiError(400, "the request body must be a JSON object", "body");
  CompletionRequest r;
  r.chat = chat;
  static const std::set<std::string, std::less<>> kCommon = {
      "model", "max_tokens", "temperature", "top_p", "top_k", "seed", "n", "stop", "stream", "stream_options",
      "logprobs", "user", "presence_penalty", "frequency_penalty", "logit_bias"};
  static const std::set<std::string, std::less<>> kCompletions = {"prompt", "echo", "best_of", "suffix"};
  static const std::set<std::string, std::less<>> kChat = {"messages", "top_logprobs", "max_completion_tokens"};
  std::set<std::string, std::less<>> seen;
  for (const auto& [key, value] : root.as_object()) {
    if (!seen.insert(key).second) bad(key, "duplicate field '" + key + "'");
    if (!kCommon.count(key) && !(chat ? kChat : kCompletions).count(key))
      bad(key, "unrecognized request argument supplied: '" + key + "'");
  }
  const Json* model = root.find("model");
  if (model == nullptr) bad("model", "'model' is required");
  r.model = text(*model, "model");
  if (r.model != limits.model)
    throw ApiError(404, "the model '" + r.model + "' does not exist (this server has '" + limits.model + "')",
                   "model", "invalid_request_error", "model_not_found");

  if (chat) {
    const Json* msgs = root.find("messages");
    if (msgs == nullptr) bad("messages", "'messages' is required");
    if (!msgs->is_array() || msgs->as_array().empty()) bad("messages", "'messages' must be a non-empty array");
    for (size_t i = 0; i < msgs->as_array().size(); ++i) {
      const Json& m = msgs->as_array()[i];
      const std::string f = "messages[" + std::to_string(i) + "]";
      if (!m.is_object()) bad(f, "'" + f + "' must be an object");
      ChatMessage cm;
      for (const auto& [key, value] : m.as_object()) {
        if (key == "role") {
          cm.role = text(value, f + ".role");
          if (cm.role != "system" && cm.role != "user" && cm.role != "assistant" && cm.role != "developer")
            bad(f + ".role", "'" + f + ".role' must be system, developer, user or assistant");
        } else if (key == "content") {
          if (value.is_string()) {
            cm.content = value.as_string();
          } else if (value.is_array()) {  // [{"type": "text", "text": ...}]
            for (const Json& part : value.as_array()) {
              const Json* type = part.is_object() ? part.find("type") : nullptr;
              const Json* t = part.is_object() ? part.find("text") : nullptr;
              if (!type || !type->is_string() || type->as_string() != "text" || !t || !t->is_string())
                bad(f + ".content", "'" + f + ".content' parts must be {\"type\": \"text\", \"text\": ...}");
              cm.content += t->as_string();
            }
          } else {
            bad(f + ".content", "'" + f + ".content' must be a string or an array of text parts");
          }
        } else if (key != "name") {
          bad(f + "." + key, "unrecognized field '" + f + "." + key + "'");
        }
      }
      if (cm.role.empty()) bad(f + ".role", "'" + f + ".role' is required");
      r.messages.push_back(std::move(cm));
    }
  } else {
    const Json* prompt = root.find("prompt");
    if (prompt == nullptr) bad("prompt", "'prompt' is required");
    if (prompt->is_string()) {
      r.prompts.push_back(prompt->as_string());
    } else if (prompt->is_array() && !prompt->as_array().empty()) {
      const Json::Array& a = prompt->as_array();
      if (a[0].is_string()) {
        for (const Json& p : a) r.prompts.push_back(text(p, "prompt"));
      } else if (a[0].is_number()) {
        r.prompt_tokens.push_back(token_ids(*prompt, "prompt"));
      } else if (a[0].is_array()) {
        for (const Json& p : a) {
          if (!p.is_array() || p.as_array().empty()) bad("prompt", "'prompt' token arrays must be non-empty");
          r.prompt_tokens.push_back(token_ids(p, "prompt"));
        }
      } else {
        bad("prompt", "'prompt' must be a string, an array of strings, or token ids");
      }
    } else {
      bad("prompt", "'prompt' must be a string, an array of strings, or token ids");
    }
    if (static_cast<int64_t>(r.prompts.size() + r.prompt_tokens.size()) > limits.max_prompts)
      bad("prompt", "at most " + std::to_string(limits.max_prompts) + " prompts per request");
    if (const Json* v = root.find("echo")) r.echo = boolean(*v, "echo");
    if (const Json* v = root.find("suffix"); v && !v->is_null()) bad("suffix", "'suffix' is not supported");
  }

  for (const char* key : {"max_tokens", "max_completion_tokens"})
    if (const Json* v = root.find(key); v && !v->is_null()) r.max_tokens = integer(*v, key, 0, limits.max_context);
  if (const Json* v = root.find("temperature"); v && !v->is_null()) {
    r.temperature = static_cast<float>(number(*v, "temperature"));
    if (r.temperature < 0 || r.temperature > 2) bad("temperature", "'temperature' must be in [0, 2]");
  }
  if (const Json* v = root.find("top_p"); v && !v->is_null()) {
    r.top_p = static_cast<float>(number(*v, "top_p"));
    if (r.top_p <= 0 || r.top_p > 1) bad("top_p", "'top_p' must be in (0, 1]");
  }
  if (const Json* v = root.find("top_k"); v && !v->is_null())
    r.top_k = static_cast<int32_t>(integer(*v, "top_k", -1, 1 << 30));
  if (r.top_k < 0) r.top_k = 0;
  if (const Json* v = root.find("seed"); v && !v->is_null())
    r.seed = static_cast<uint64_t>(integer(*v, "seed", INT64_MIN / 2, INT64_MAX / 2));
  if (const Json* v = root.find("n"); v && !v->is_null()) r.n = integer(*v, "n", 1, limits.max_n);
  if (const Json* v = root.find("best_of"); v && !v->is_null())
    if (integer(*v, "best_of", 1, limits.max_n) != r.n) bad("best_of", "'best_of' must equal 'n' (no reranking)");
  if (const Json* v = root.find("stop"); v && !v->is_null()) {
    if (v->is_string()) {
      r.stop.push_back(v->as_string());
    } else if (v->is_array()) {
      for (const Json& s : v->as_array()) r.stop.push_back(text(s, "stop"));
    } else {
      bad("stop", "'stop' must be a string or an array of strings");
    }
    if (static_cast<int64_t>(r.stop.size()) > limits.max_stop)
      bad("stop", "at most " + std::to_string(limits.max_stop) + " stop sequences");
    for (const auto& s : r.stop)
      if (s.empty()) bad("stop", "stop sequences must not be empty");
  }
  if (const Json* v = root.find("stream"); v && !v->is_null()) r.stream = boolean(*v, "stream");
  if (const Json* v = root.find("stream_options"); v && !v->is_null()) {
    if (!v->is_object()) bad("stream_options", "'stream_options' must be an object");
    for (const auto& [key, value] : v->as_object()) {
      if (key != "include_usage") bad("stream_options." + key, "unrecognized field 'stream_options." + key + "'");
      r.include_usage = boolean(value, "stream_options.include_usage");
    }
  }
  for (const char* key : {"presence_penalty", "frequency_penalty"})
    if (const Json* v = root.find(key); v && !v->is_null())
      if (number(*v, key) != 0) bad(key, std::string("'") + key + "' is not supported (must be 0)");
  if (const Json* v = root.find("logit_bias"); v && !v->is_null())
    if (!v->is_object() || !v->as_object().empty()) bad("logit_bias", "'logit_bias' is not supported");
  if (const Json* v = root.find("user"); v && !v->is_null()) (void)text(*v, "user");
  if (chat) {
    const Json* lp = root.find("logprobs");
    const bool want = lp && !lp->is_null() && boolean(*lp, "logprobs");
    int64_t top = 0;
    if (const Json* v = root.find("top_logprobs"); v && !v->is_null()) {
      top = integer(*v, "top_logprobs", 0, limits.max_logprobs);
      if (!want) bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    }
    if (want) r.logprobs = static_cast<int32_t>(top);
  } else if (const Json* v = root.find("logprobs"); v && !v->is_null()) {
    r.logprobs = static_cast<int32_t>(integer(*v, "logprobs", 0, limits.max_logprobs));
  }
  if (r.stream && r.echo && r.logprobs >= 0) bad("echo", "'echo' with 'logprobs' is not supported when streaming");
  return r;
}

std::string chat_template_name(std::string_view jinja) {
  if (jinja.find("<|im_start|>") != std::string_view::npos) return "chatml";
  if (jinja.find("<|start_header_id|>") != std::string_view::npos) return "llama3";
  if (jinja.find("[INST]") != std::string_view::npos) return "llama2";
  // Zephyr ends every turn with the EOS token (a literal "</s>" or eos_token); Phi-3's
  // <|user|>/<|assistant|> turns end with <|end|> instead and are not Zephyr.
  const auto has = [&](std::string_view s) { return jinja.find(s) != std::string_view::npos; };
  if (has("<|user|>") && has("<|assistant|>") && (has("</s>") || has("eos_token")) && !has("<|end|>"))
    return "zephyr";
  return "plain";
}

std::string render_chat(const std::vector<ChatMessage>& messages, std::string_view name, std::string_view bos,
                        std::string_view eos) {
  std::string out;
  if (name == "chatml") {
    for (const auto& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    out += "<|im_start|>assistant\n";
  } else if (name == "llama3") {
    out += bos;
    for (const auto& m : messages)
      out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + m.content + "<|eot_id|>";
    out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  } else if (name == "llama2") {
    std::string system;
    bool first = true;
    for (const auto& m : messages) {
      if (m.role == "system" || m.role == "developer") {
        system += m.content;
      } else if (m.role == "user") {
        out += std::string(bos) + "[INST] ";
        if (first && !system.empty()) out += "<<SYS>>\n" + system + "\n<</SYS>>\n\n";
        out += m.content + " [/INST]";
        first = false;
      } else {
        out += " " + m.content + " " + std::string(eos);
      }
    }
  } else if (name == "zephyr") {
    for (const auto& m : messages) out += "<|" + m.role + "|>\n" + m.content + std::string(eos) + "\n";
    out += "<|assistant|>\n";
  } else {  // plain
    for (const auto& m : messages) {
      if (m.role == "system" || m.role == "developer") out += m.content + "\n\n";
      else out += (m.role == "user" ? "User: " : "Assistant: ") + m.content + "\n";
    }
    out += "Assistant:";
  }
  return out;
}

void check_prompt_token_ids(const std::vector<int32_t>& ids, int32_t vocab_size) {
  for (int32_t id : ids)
    if (id >= vocab_size)
      throw ApiError(400, "token id " + std::to_string(id) + " is outside the vocabulary of " +
                              std::to_string(vocab_size), "prompt");
}

void check_prompt_fits(size_t prompt_tokens, const CompletionRequest& r, int64_t ctx, const char* prompt_field) {
  const auto n = static_cast<int64_t>(prompt_tokens);
  if (n == 0) throw ApiError(400, "the prompt is empty", prompt_field);
  if (n > ctx)
    throw ApiError(400, "the prompt has " + std::to_string(n) + " tokens, more than the context of " +
                            std::to_string(ctx), prompt_field, "invalid_request_error", "context_length_exceeded");
  if (r.max_tokens && n + *r.max_tokens > ctx)
    throw ApiError(400, "the prompt (" + std::to_string(n) + " tokens) plus max_tokens (" +
                            std::to_string(*r.max_tokens) + ") exceeds the context of " + std::to_string(ctx),
                   "max_tokens", "invalid_request_error", "context_length_exceeded");
}

int64_t default_max_tokens(const CompletionRequest& r, bool chat, int64_t ctx, size_t prompt_tokens) {
  if (r.max_tokens) return *r.max_tokens;
  const int64_t room = ctx - static_cast<int64_t>(prompt_tokens);
  return chat ? room : std::min<int64_t>(16, room);
}

}  // namespace tessera::server
