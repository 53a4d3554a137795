// llama2.c tokenizer files (tok512.bin, tokenizer.bin).
#include <cstring>

#include "common/error.h"
#include "common/mapped_file.h"
#include "tokenizer/loaders.h"
#include "tokenizer/tokenizer_impl.h"

namespace tessera {

Vocab load_llama2c_tokenizer(const std::string& path, int32_t vocab_size) {
  MappedFile file(path);
  const uint8_t* p = file.data();
  const size_t size = file.size();
  auto read_i32 = [&](size_t off, const char* field) {
    TESSERA_REQUIRE(off + 4 <= size, ErrorKind::kInvalidInput, path, ": truncated at offset ",
                    off, " reading ", field, " (file is ", size, " bytes)");
    int32_t v;
    std::memcpy(&v, p + off, 4);
    return v;
  };
  const int32_t max_len = read_i32(0, "max_token_length");
  TESSERA_REQUIRE(max_len > 0 && max_len < (1 << 20), ErrorKind::kInvalidInput, path,
                  ": max_token_length ", max_len, " at offset 0 is not plausible");
  Vocab v;
  v.source = path;
  size_t off = 4;
  while (vocab_size < 0 ? off < size : v.size() < vocab_size) {
    const int32_t id = v.size();
    float score;
    const int32_t bits = read_i32(off, "score");
    std::memcpy(&score, &bits, 4);
    const int32_t len = read_i32(off + 4, "length");
    TESSERA_REQUIRE(len >= 0 && len <= max_len && off + 8 + static_cast<size_t>(len) <= size,
                    ErrorKind::kInvalidInput, path, ": token ", id, " at offset ", off,
                    " has length ", len, " (max_token_length ", max_len, ", ",
                    size - std::min(size, off + 8), " bytes left)");
    v.tokens.emplace_back(reinterpret_cast<const char*>(p + off + 8), static_cast<size_t>(len));
    v.scores.push_back(score);
    off += 8 + static_cast<size_t>(len);
  }
  TESSERA_REQUIRE(v.size() >= 3, ErrorKind::kInvalidInput, path, ": only ", v.size(), " tokens");
  // llama2.c hard-codes these ids (run.c: BOS 1, EOS 2; byte tokens at 3..258).
  v.model = TokenizerModel::kSpm;
  v.types.assign(v.tokens.size(), TokenType::kNormal);
  v.unk_id = 0;
  v.bos_id = 1;
  v.eos_id = 2;
  v.types[0] = TokenType::kUnknown;
  v.types[1] = TokenType::kControl;
  v.types[2] = TokenType::kControl;
  for (size_t i = 3; i < v.tokens.size(); ++i) {
    if (detail::parse_byte_piece(v.tokens[i]) >= 0) v.types[i] = TokenType::kByte;
  }
  v.add_bos = true;
  v.add_dummy_prefix = true;
  v.byte_fallback = true;
  v.llama2c_encode = true;
  return v;
}

Vocab llama2c_to_spm(Vocab v) {
  for (auto& piece : v.tokens) {
    std::string out;
    for (char c : piece) {
      if (c == ' ') {
        out += "\xE2\x96\x81";
      } else {
        out.push_back(c);
      }
    }
    piece = std::move(out);
  }
  // llama2.c stores BOS/EOS as "\n<s>\n" / "\n</s>\n"; SentencePiece names them <s>, </s>.
  if (v.bos_id >= 0 && v.tokens[static_cast<size_t>(v.bos_id)] == "\n<s>\n") v.tokens[static_cast<size_t>(v.bos_id)] = "<s>";
  if (v.eos_id >= 0 && v.tokens[static_cast<size_t>(v.eos_id)] == "\n</s>\n") v.tokens[static_cast<size_t>(v.eos_id)] = "</s>";
  v.llama2c_encode = false;
  return v;
}

}  // namespace tessera
