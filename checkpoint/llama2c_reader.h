// llama2.c checkpoints (karpathy/llama2.c run.c / export.py), fp32 only.
//
// Legacy "version 0" (.bin from the original export): 7 x int32 header
//   dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
// (vocab_size < 0 means the classifier is NOT tied and wcls follows at the end),
// then float32 arrays, each stacked over layers:
//   tok_emb[vocab][dim], rms_att[L][dim], wq[L][dim][dim], wk[L][kv_dim][dim],
//   wv[L][kv_dim][dim], wo[L][dim][dim], rms_ffn[L][dim], w1[L][hidden][dim],
//   w2[L][dim][hidden], w3[L][hidden][dim], rms_final[dim],
//   freq_cis_real[seq_len][head_size/2], freq_cis_imag[seq_len][head_size/2],
//   wcls[vocab][dim] (untied only).
// Version 1 (export.py version1_export): 256-byte header = u32 magic "ak42"
// (0x616b3432), i32 version, the 7 int32 params, u8 shared_classifier, zero padding;
// then fp32 arrays: rms_att x L, rms_ffn x L, rms_final, tok_emb, wq x L, wk x L,
// wv x L, wo x L, w1 x L, w2 x L, w3 x L, wcls (if not shared).
// Version 2 (int8 groups) is reported as kUnsupported.
//
// Tensors are exposed per layer under GGUF names, each a view into the file:
//   token_embd.weight, blk.N.attn_norm.weight, blk.N.attn_{q,k,v,output}.weight,
//   blk.N.ffn_norm.weight, blk.N.ffn_gate.weight (w1), blk.N.ffn_down.weight (w2),
//   blk.N.ffn_up.weight (w3), output_norm.weight, output.weight (the same bytes as
//   token_embd.weight when tied), and for version 0 the unused RoPE tables
//   freq_cis_real / freq_cis_imag. Shapes are [out][in] (y = W x), as in the file.
// The file size must equal exactly what the header implies.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "checkpoint/checkpoint.h"

namespace tessera::checkpoint {

constexpr uint32_t kLlama2cMagic = 0x616b3432;  // "ak42" as a little-endian u32

struct Llama2cConfig {
  int version = 0;  // 0 = legacy header, 1 = "ak42" version 1
  int32_t dim = 0;
  int32_t hidden_dim = 0;
  int32_t n_layers = 0;
  int32_t n_heads = 0;
  int32_t n_kv_heads = 0;
  int32_t vocab_size = 0;  // always positive here; see shared_classifier
  int32_t seq_len = 0;
  bool shared_classifier = true;

  int32_t head_size() const { return dim / n_heads; }
  int32_t kv_dim() const { return head_size() * n_kv_heads; }
};

class Llama2cReader : public Checkpoint {
 public:
  explicit Llama2cReader(const std::string& path);
  Llama2cReader(std::span<const uint8_t> bytes, std::string name);  // caller-owned buffer

  std::string_view format() const override { return "llama2c"; }
  std::string format_version() const override;
  std::string architecture() const override { return "llama"; }

  const Llama2cConfig& config() const { return config_; }

 private:
  void parse(uint32_t file_index);

  Llama2cConfig config_;
};

}  // namespace tessera::checkpoint
