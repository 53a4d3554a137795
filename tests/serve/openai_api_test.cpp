#include "server/openai_api.h"

#include <gtest/gtest.h>

#include "common/json.h"

namespace tessera::server {
namespace {

ApiLimits limits() {
  ApiLimits l;
  l.model = "m";
  l.max_context = 512;
  return l;
}

std::string param_of(const std::string& body, bool chat = false) {
  try {
    (void)parse_completion_request(body, chat, limits());
  } catch (const ApiError& e) {
    return e.param;
  }
  return "<accepted>";
}

TEST(OpenAiApi, ParsesACompletionRequest) {
  CompletionRequest r = parse_completion_request(
      R"({"model":"m","prompt":"hi","max_tokens":5,"temperature":0,"top_p":0.9,"top_k":4,"seed":7,"n":2,)"
      R"("stop":["a","b"],"stream":true,"stream_options":{"include_usage":true},"logprobs":3,"user":"u"})",
      false, limits());
  EXPECT_EQ(r.prompts, std::vector<std::string>{"hi"});
  EXPECT_EQ(*r.max_tokens, 5);
  EXPECT_EQ(r.temperature, 0.0f);
  EXPECT_EQ(r.top_k, 4);
  EXPECT_EQ(*r.seed, 7u);
  EXPECT_EQ(r.n, 2);
  EXPECT_EQ(r.stop.size(), 2u);
  EXPECT_TRUE(r.stream && r.include_usage && !r.echo);
  EXPECT_EQ(r.logprobs, 3);
}

TEST(OpenAiApi, ParsesTokenPromptsAndChat) {
  CompletionRequest r = parse_completion_request(R"({"model":"m","prompt":[[1,2],[3]]})", false, limits());
  EXPECT_EQ(r.prompt_tokens.size(), 2u);
  CompletionRequest c = parse_completion_request(
      R"({"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"q"}]}],)"
      R"("logprobs":true,"top_logprobs":2})",
      true, limits());
  ASSERT_EQ(c.messages.size(), 2u);
  EXPECT_EQ(c.messages[1].content, "q");
  EXPECT_EQ(c.logprobs, 2);
}

TEST(OpenAiApi, BadInputNamesTheField) {
  EXPECT_EQ(param_of("{"), "body");
  EXPECT_EQ(param_of("[]"), "body");
  EXPECT_EQ(param_of("{\"model\":\"m\",\"prompt\":\"\xff\"}"), "body");
  EXPECT_EQ(param_of(R"({"model":"m","prompt":"x","max_tokens":-1})"), "max_tokens");
  EXPECT_EQ(param_of(R"({"model":"m","prompt":"x","max_tokens":1e12})"), "max_tokens");
  EXPECT_EQ(param_of(R"({"model":"m","prompt":"x","max_tokens":1.5})"), "max_tokens");
  EXPECT_EQ(param_of(R"({"model":"m","prompt":"x","wat":1})"), "wat");
  EXPECT_EQ(param_of(R"({"model":"zz","prompt":"x"})"), "model");
  EXPECT_EQ(param_of(R"({"model":"m","prompt":{}})"), "prompt");
  EXPECT_EQ(param_of(R"({"model":"m","prompt":[-1]})"), "prompt");
  EXPECT_EQ(param_of(R"({"model":"m","prompt":"x","temperature":3})"), "temperature");
  EXPECT_EQ(param_of(R"({"model":"m","prompt":"x","n":100})"), "n");
  EXPECT_EQ(param_of(R"({"model":"m","prompt":"x","stop":[""]})"), "stop");
  EXPECT_EQ(param_of(R"({"model":"m","prompt":"x","stream_options":{"x":1}})"), "stream_options.x");
  EXPECT_EQ(param_of(R"({"model":"m","prompt":"x","model":"m"})"), "model");
  EXPECT_EQ(param_of(R"({"model":"m","messages":[{"role":"user"}]})", true), "<accepted>");
  EXPECT_EQ(param_of(R"({"model":"m","messages":[{"content":"x"}]})", true), "messages[0].role");
  EXPECT_EQ(param_of(R"({"model":"m","prompt":"x"})", true), "prompt");
}

TEST(OpenAiApi, ErrorJsonHasOpenAisShape) {
  const Json j = Json::parse(error_json(ApiError(400, "bad", "max_tokens")));
  const Json& e = j.at("error");
  EXPECT_EQ(e.at("message").as_string(), "bad");
  EXPECT_EQ(e.at("type").as_string(), "invalid_request_error");
  EXPECT_EQ(e.at("param").as_string(), "max_tokens");
  EXPECT_TRUE(e.at("code").is_null());
}

TEST(OpenAiApi, Utf8Validation) {
  EXPECT_TRUE(valid_utf8("héllo €𝄞"));
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xe2\x82"));          // truncated
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // > U+10FFFF
}

TEST(OpenAiApi, ChatTemplates) {
  std::vector<ChatMessage> m = {{"system", "S"}, {"user", "U"}};
  EXPECT_EQ(render_chat(m, "plain"), "S\n\nUser: U\nAssistant:");
  EXPECT_EQ(render_chat(m, "chatml"), "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(render_chat(m, "llama2", "<s>", "</s>"), "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST]");
  EXPECT_EQ(chat_template_name("{% for m in messages %}<|im_start|>{{m.role}}"), "chatml");
  EXPECT_EQ(chat_template_name("{{ '<|start_header_id|>' }}"), "llama3");
  EXPECT_EQ(chat_template_name(""), "plain");
}

// `tessera serve --chat-template auto`: checkpoint templates (abridged from the models'
// own) mapped to the built-in renderers by their markers.
TEST(OpenAiApi, ChatTemplateDetection) {
  // SmolLM2-135M-Instruct's GGUF tokenizer.chat_template.
  EXPECT_EQ(chat_template_name("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                               "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM<|im_end|>\n' }}"
                               "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
                               "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
                               "{{ '<|im_start|>assistant\n' }}{% endif %}"),
            "chatml");
  EXPECT_EQ(chat_template_name("{{- bos_token }}{{- '<|start_header_id|>system<|end_header_id|>\n\n' }}"
                               "{{- '<|eot_id|>' }}"),
            "llama3");
  EXPECT_EQ(chat_template_name("{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}"
                               "{{ ' ' + message['content'] + ' ' + eos_token }}"),
            "llama2");
  // Zephyr: literal </s> or eos_token after each turn.
  EXPECT_EQ(chat_template_name("{{ '<|user|>\n' + message['content'] + eos_token }}"
                               "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"),
            "zephyr");
  EXPECT_EQ(chat_template_name("<|user|>\n{{ m }}</s>\n<|assistant|>\n"), "zephyr");
  // Phi-3 also says <|user|>/<|assistant|> but ends turns with <|end|>: not Zephyr.
  EXPECT_EQ(chat_template_name("{{'<|user|>' + '\n' + message['content'] + '<|end|>' + '\n' + '<|assistant|>' + "
                               "'\n'}}{{ eos_token }}"),
            "plain");
  EXPECT_EQ(chat_template_name("<|user|>\n{{ m }}"), "plain");  // no assistant turn, no EOS
  // Unknown formats (Gemma) fall back to plain.
  EXPECT_EQ(chat_template_name("{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"),
            "plain");
}

}  // namespace
}  // namespace tessera::server
