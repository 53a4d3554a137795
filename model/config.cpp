#include "model/config.h"

#include <sstream>

#include "common/error.h"

namespace tessera {

const char* ffn_kind_name(FfnKind kind) {
  switch (kind) {
    case FfnKind::kSwiGlu: return "swiglu";
    case FfnKind::kGeGlu: return "geglu";
    case FfnKind::kGelu: return "gelu";
    case FfnKind::kSilu: return "silu";
  }
  return "?";
}

void ModelConfig::validate(const std::string& source) const {
  auto positive = [&](int64_t v, const char* field) {
    TESSERA_REQUIRE(v > 0 && v < (int64_t{1} << 40), ErrorKind::kInvalidInput, source, ": field ",
                    field, " = ", v, " is out of range");
  };
  positive(dim, "dim");
  positive(n_layers, "n_layers");
  positive(n_heads, "n_heads");
  positive(n_kv_heads, "n_kv_heads");
  positive(head_dim, "head_dim");
  positive(ffn_dim, "ffn_dim");
  positive(vocab_size, "vocab_size");
  positive(max_seq_len, "max_seq_len");
  TESSERA_REQUIRE(n_heads % n_kv_heads == 0, ErrorKind::kInvalidInput, source, ": n_heads (", n_heads,
                  ") is not a multiple of n_kv_heads (", n_kv_heads, ")");
  TESSERA_REQUIRE(rope_dim > 0 && rope_dim <= head_dim && rope_dim % 2 == 0, ErrorKind::kInvalidInput,
                  source, ": rope dimension ", rope_dim, " must be even and in (0, head_dim=", head_dim, "]");
  TESSERA_REQUIRE(norm_eps > 0 && norm_eps < 1, ErrorKind::kInvalidInput, source, ": norm epsilon ",
                  norm_eps, " is out of range");
  TESSERA_REQUIRE(rope_theta > 0, ErrorKind::kInvalidInput, source, ": rope theta ", rope_theta,
                  " must be positive");
  moe.validate(source);
}

std::string ModelConfig::summary() const {
  std::ostringstream os;
  os << architecture << ": dim " << dim << ", layers " << n_layers << ", heads " << n_heads << "/"
     << n_kv_heads << " (head_dim " << head_dim << "), ffn " << ffn_dim << " (" << ffn_kind_name(ffn)
     << "), vocab " << vocab_size << ", context " << max_seq_len << ", rope theta " << rope_theta
     << " dim " << rope_dim << (rope_layout == kernels::RopeLayout::kInterleaved ? " interleaved" : " halves")
     << (tied_embeddings ? ", tied head" : ", untied head");
  if (moe.enabled()) os << "; " << moe.summary();
  return os.str();
}

}  // namespace tessera
