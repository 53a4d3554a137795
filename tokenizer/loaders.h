// Loaders: each reads one tokenizer file format into a Vocab (vocab.h). Errors are
// tessera::Error naming the file and the field or byte offset.
//
//   auto tok = Tokenizer::create(load_llama2c_tokenizer("tok512.bin", 512));
//   auto tok = Tokenizer::create(load_sentencepiece_model("tokenizer.model"));
//   auto tok = load_tokenizer("path/to/model_dir");   // picks the file itself
#pragma once

#include <memory>
#include <string>

#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace tessera {

// llama2.c tok*.bin / tokenizer.bin: int32 max_token_length, then per token float32
// score, int32 length, bytes. The file has no token count: vocab_size < 0 reads to
// the end of the file; otherwise exactly vocab_size tokens are read. The result uses
// llama2.c semantics (plain spaces, llama2c_encode) with bos 1, eos 2, unk 0, add_bos.
Vocab load_llama2c_tokenizer(const std::string& path, int32_t vocab_size = -1);

// Turns a llama2.c vocab into the SentencePiece form ("▁" for spaces, HF/llama.cpp
// SPM encode), which is what Llama 2's Hugging Face ids are produced by.
Vocab llama2c_to_spm(Vocab vocab);

// SentencePiece tokenizer.model (ModelProto; BPE models only).
Vocab load_sentencepiece_model(const std::string& path);

// Hugging Face tokenizer.json (model.type BPE; byte-level or SentencePiece-style).
Vocab load_hf_tokenizer_json(const std::string& path);

// GPT-2 style encoder.json (piece -> id) + vocab.bpe (merges "A B", optional
// "#version" header). GPT-2 pre-tokenizer; <|endoftext|> as bos/eos when present.
Vocab load_bpe_encoder(const std::string& encoder_json, const std::string& vocab_bpe);

// Llama 3 from encoder.json + vocab.bpe (128000 regular tokens): Llama 3
// pre-tokenizer, ignore_merges, the 256 special tokens, add_bos.
Vocab load_llama3_encoder(const std::string& encoder_json, const std::string& vocab_bpe);

// Tokenizer metadata of a GGUF file (tokenizer.ggml.*).
Vocab load_gguf_tokenizer(const std::string& gguf_path);

// A model directory or a single tokenizer file. For a directory, tries in order:
// tokenizer.json, tokenizer.model, encoder.json + vocab.bpe, tokenizer.bin, tok*.bin,
// then the first *.gguf. tokenizer_config.json (if present) overrides bos/eos/add_bos.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

}  // namespace tessera
