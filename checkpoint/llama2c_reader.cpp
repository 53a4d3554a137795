#include "checkpoint/llama2c_reader.h"

#include <initializer_list>
#include <string_view>
#include <vector>

#include "checkpoint/byte_reader.h"
#include "common/error.h"

namespace tessera::checkpoint {

namespace {

constexpr uint64_t kV1HeaderBytes = 256;

// Validates the hyperparameters (positive, heads divide dim, kv heads divide heads).
void check_config(const Llama2cConfig& c, const std::string& file, uint64_t header_at) {
  auto positive = [&](int32_t v, const char* field, int index) {
    TESSERA_REQUIRE(v > 0, ErrorKind::kInvalidInput, file, ": llama2.c header field ", field,
                    " (byte offset ", header_at + 4 * index, ") is ", v,
                    "; it must be positive");
  };
  positive(c.dim, "dim", 0);
  positive(c.hidden_dim, "hidden_dim", 1);
  positive(c.n_layers, "n_layers", 2);
  positive(c.n_heads, "n_heads", 3);
  positive(c.n_kv_heads, "n_kv_heads", 4);
  positive(c.vocab_size, "vocab_size", 5);
  positive(c.seq_len, "seq_len", 6);
  TESSERA_REQUIRE(c.dim % c.n_heads == 0, ErrorKind::kInvalidInput, file,
                  ": llama2.c header: dim ", c.dim, " (byte offset ", header_at,
                  ") is not divisible by n_heads ", c.n_heads, " (byte offset ", header_at + 12,
                  ")");
  TESSERA_REQUIRE(c.n_kv_heads <= c.n_heads && c.n_heads % c.n_kv_heads == 0,
                  ErrorKind::kInvalidInput, file, ": llama2.c header: n_heads ", c.n_heads,
                  " is not a multiple of n_kv_heads ", c.n_kv_heads, " (byte offset ",
                  header_at + 16, ")");
}

std::string describe(const Llama2cConfig& c) {
  return detail::concat("dim=", c.dim, " hidden_dim=", c.hidden_dim, " n_layers=", c.n_layers,
                        " n_heads=", c.n_heads, " n_kv_heads=", c.n_kv_heads,
                        " vocab_size=", c.vocab_size, " seq_len=", c.seq_len,
                        c.shared_classifier ? " (tied classifier)" : " (untied classifier)");
}

}  // namespace

Llama2cReader::Llama2cReader(const std::string& path) : Checkpoint(path) {
  parse(add_file(std::make_unique<MappedFile>(path)));
}

Llama2cReader::Llama2cReader(std::span<const uint8_t> bytes, std::string name)
    : Checkpoint(name) {
  parse(add_buffer(bytes, std::move(name)));
}

std::string Llama2cReader::format_version() const {
  return config_.version == 0 ? "0 (legacy header)" : std::to_string(config_.version);
}

void Llama2cReader::parse(uint32_t file_index) {
  const std::string& file = file_name(file_index);
  ByteReader in(file_bytes(file_index), file);
  Llama2cConfig& c = config_;

  const uint32_t first = in.size() >= 4 ? in.read<uint32_t>("the header") : 0;
  in.seek(0);
  uint64_t params_at = 0;
  uint64_t data_at = 0;
  if (first == kLlama2cMagic) {
    in.skip(4, "the magic");
    const int32_t version = in.read<int32_t>("the version");
    TESSERA_REQUIRE(version != 2, ErrorKind::kUnsupported, file,
                    ": llama2.c version 2 checkpoints (int8 Q8_0 groups, byte offset 4) are "
                    "not supported; export version 1 (fp32) or convert to GGUF");
    TESSERA_REQUIRE(version == 1, ErrorKind::kUnsupported, file,
                    ": unsupported llama2.c checkpoint version ", version,
                    " at byte offset 4 (supported: legacy 0, 1)");
    c.version = 1;
    params_at = 8;
    data_at = kV1HeaderBytes;
  }
  in.seek(params_at);
  c.dim = in.read<int32_t>("dim");
  c.hidden_dim = in.read<int32_t>("hidden_dim");
  c.n_layers = in.read<int32_t>("n_layers");
  c.n_heads = in.read<int32_t>("n_heads");
  c.n_kv_heads = in.read<int32_t>("n_kv_heads");
  const int32_t vocab = in.read<int32_t>("vocab_size");
  c.seq_len = in.read<int32_t>("seq_len");
  if (c.version == 1) {
    c.vocab_size = vocab;
    c.shared_classifier = in.read<uint8_t>("shared_classifier") != 0;
    in.need(kV1HeaderBytes - in.offset(), "the 256-byte version 1 header");
  } else {
    // Legacy: the sign of vocab_size carries the tied flag. INT32_MIN has no positive
    // counterpart and is rejected by check_config below.
    c.shared_classifier = vocab > 0;
    c.vocab_size = vocab == INT32_MIN ? 0 : (vocab < 0 ? -vocab : vocab);
    data_at = in.offset();
  }
  check_config(c, file, params_at);
  if (c.version == 0) {
    TESSERA_REQUIRE(c.head_size() % 2 == 0, ErrorKind::kInvalidInput, file,
                    ": llama2.c header: head size ", c.head_size(),
                    " (dim / n_heads) must be even for the RoPE tables");
  }

  // Lay the tensors out in file order with overflow-checked sizes. The first pass
  // only sums sizes, so a hostile header (n_layers = 2^31) is rejected against the
  // file size before any per-layer entry is allocated; the second pass records them.
  std::vector<TensorInfo> infos;
  uint64_t cursor = data_at;
  bool overflow = false;
  bool record = false;
  auto add = [&](std::string_view name, std::initializer_list<int64_t> shape,
                 int64_t repeat = 1) {
    int64_t n = repeat;
    for (int64_t d : shape) overflow |= !checked_mul(n, d, &n);
    uint64_t bytes = 0;
    overflow |= !checked_mul(static_cast<uint64_t>(n), uint64_t{4}, &bytes);
    overflow |= __builtin_add_overflow(cursor, bytes, &cursor) != 0;
    if (!record) return;
    TensorInfo t;
    t.name = std::string(name);
    t.type_name = "F32";
    t.dtype_opt = DType::kF32;
    t.block_elems = 1;
    t.block_bytes = 4;
    t.shape = shape;
    t.file_index = file_index;
    t.file = file;
    t.offset = cursor - bytes;
    t.size = bytes;
    infos.push_back(std::move(t));
  };
  const int64_t dim = c.dim, hidden = c.hidden_dim, kv_dim = c.kv_dim(), vocab_n = c.vocab_size;
  const int L = c.n_layers;
  auto per_layer = [&](const char* what, std::initializer_list<int64_t> shape) {
    if (!record) {  // sizes only: L copies of the same shape at once
      add(what, shape, L);
      return;
    }
    for (int l = 0; l < L; ++l) add("blk." + std::to_string(l) + "." + what, shape);
  };
  auto layout = [&]() {
    if (c.version == 0) {
      add("token_embd.weight", {vocab_n, dim});
      per_layer("attn_norm.weight", {dim});
      per_layer("attn_q.weight", {dim, dim});
      per_layer("attn_k.weight", {kv_dim, dim});
      per_layer("attn_v.weight", {kv_dim, dim});
      per_layer("attn_output.weight", {dim, dim});
      per_layer("ffn_norm.weight", {dim});
      per_layer("ffn_gate.weight", {hidden, dim});
      per_layer("ffn_down.weight", {dim, hidden});
      per_layer("ffn_up.weight", {hidden, dim});
      add("output_norm.weight", {dim});
      add("freq_cis_real", {c.seq_len, c.head_size() / 2});
      add("freq_cis_imag", {c.seq_len, c.head_size() / 2});
    } else {
      per_layer("attn_norm.weight", {dim});
      per_layer("ffn_norm.weight", {dim});
      add("output_norm.weight", {dim});
      add("token_embd.weight", {vocab_n, dim});
      per_layer("attn_q.weight", {dim, dim});
      per_layer("attn_k.weight", {kv_dim, dim});
      per_layer("attn_v.weight", {kv_dim, dim});
      per_layer("attn_output.weight", {dim, dim});
      per_layer("ffn_gate.weight", {hidden, dim});
      per_layer("ffn_down.weight", {dim, hidden});
      per_layer("ffn_up.weight", {hidden, dim});
    }
    if (!c.shared_classifier) add("output.weight", {vocab_n, dim});
  };
  layout();
  TESSERA_REQUIRE(!overflow && cursor == in.size(), ErrorKind::kInvalidInput, file,
                  ": llama2.c header (", describe(c), ") implies ",
                  overflow ? std::string("more than 2^64") : std::to_string(cursor),
                  " bytes but the file has ", in.size(),
                  " (dims inconsistent with the file size, or not a llama2.c checkpoint)");
  cursor = data_at;
  record = true;
  infos.reserve(static_cast<size_t>(L) * 9 + 5);
  layout();

  if (c.shared_classifier) {
    TensorInfo out = infos[c.version == 0 ? 0 : static_cast<size_t>(2 * L + 1)];
    out.name = "output.weight";  // the same bytes as token_embd.weight
    infos.push_back(std::move(out));
  }
  for (TensorInfo& t : infos) add_tensor(std::move(t));
}

}  // namespace tessera::checkpoint
