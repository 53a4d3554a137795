// The hand-written pre-tokenizer matchers against the regex semantics.
#include <gtest/gtest.h>

#include "tokenizer/pretokenize.h"
#include "tokenizer/unicode_tables.h"

namespace tessera {
namespace {

std::vector<std::string> split(PreTokenizer kind, std::string_view text) {
  std::vector<std::string_view> words;
  pretokenize(kind, text, words);
  return {words.begin(), words.end()};
}

using V = std::vector<std::string>;

TEST(Pretokenize, Gpt2) {
  EXPECT_EQ(split(PreTokenizer::kGpt2, "Hello world's   end!!  "),
            (V{"Hello", " world", "'s", "  ", " end", "!!", "  "}));
  EXPECT_EQ(split(PreTokenizer::kGpt2, "a 123\tb"), (V{"a", " 123", "\t", "b"}));
  EXPECT_EQ(split(PreTokenizer::kGpt2, "I'M"), (V{"I", "'", "M"}));  // case-sensitive
}

TEST(Pretokenize, Llama3) {
  EXPECT_EQ(split(PreTokenizer::kLlama3, "I'M 12345 ok\n\n  x"),
            (V{"I", "'M", " ", "123", "45", " ok", "\n\n", " ", " x"}));
  EXPECT_EQ(split(PreTokenizer::kLlama3, "(hi)...\r\nyo"), (V{"(hi", ")...\r\n", "yo"}));
  EXPECT_EQ(split(PreTokenizer::kQwen2, "123"), (V{"1", "2", "3"}));
  EXPECT_EQ(split(PreTokenizer::kSmolLM, "ab 12c"), (V{"ab", " ", "1", "2", "c"}));
}

TEST(Pretokenize, UnicodeClasses) {
  EXPECT_TRUE(unicode_is_letter(0x00C4));   // Ä
  EXPECT_TRUE(unicode_is_letter(0x6211));   // 我
  EXPECT_FALSE(unicode_is_letter(0x1F999)); // 🦙
  EXPECT_TRUE(unicode_is_number(0x00BD));   // ½ (No)
  EXPECT_TRUE(unicode_is_number(0x0663));   // Arabic-Indic three
  EXPECT_TRUE(unicode_is_space(0x3000));
  EXPECT_TRUE(unicode_is_space(0x0085));
  EXPECT_FALSE(unicode_is_space(0x200B));   // zero width space is not White_Space
  EXPECT_STREQ(unicode_tables::kUnicodeVersion, "14.0.0");
}

TEST(Pretokenize, InvalidUtf8CoversInput) {
  const std::string s = "a\xff\xfe b\xc3";
  std::string joined;
  for (const auto& w : split(PreTokenizer::kLlama3, s)) joined += w;
  EXPECT_EQ(joined, s);
}

}  // namespace
}  // namespace tessera
