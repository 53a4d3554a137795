// Builds MoE GGUF fixtures from a dense GGUF (the bundled stories260K) at test time:
// they are too big to commit (E = 256 full-size experts is ~170 MB of F32).
//
//   make_moe_fixture permuted DENSE.gguf OUT.gguf E K SEED [--metadata-experts N]
//       every FFN becomes E experts, each the dense FFN with its hidden units permuted
//       (one random permutation per expert, the same for gate, up and down rows /
//       down columns), a random router, top-K, renormalised gates: since the gates of
//       a token sum to 1 and every expert computes the dense FFN, the MoE model equals
//       the dense one up to rounding. --metadata-experts writes a different
//       expert_count than the tensors hold (a corrupt checkpoint).
//   make_moe_fixture random DENSE.gguf OUT.gguf E K FFN SEED [--shared FS] [--router R] [--softmax-gates]
//       random experts of FFN units (and a random shared expert of FS units) on the
//       dense model's attention: a model whose every expert differs.
// Everything else (attention, norms, embedding, tokenizer metadata) is copied.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "checkpoint/gguf_reader.h"
#include "checkpoint/gguf_writer.h"
#include "common/error.h"

namespace ck = tessera::checkpoint;

namespace {

// Every key except `skip` (rewritten by the caller).
void copy_metadata(const ck::GgufReader& g, ck::GgufWriter& w, const std::string& skip) {
  for (const auto& [key, v] : g.metadata().entries()) {
    if (key == "general.alignment" || key == skip) continue;
    switch (v.type) {
      case ck::GgufType::kString: w.add_string(key, v.str); break;
      case ck::GgufType::kArray: {
        std::vector<uint8_t> payload;
        ck::GgufWriter::put_u32(payload, static_cast<uint32_t>(v.elem_type));
        ck::GgufWriter::put_u64(payload, v.count);
        payload.insert(payload.end(), v.raw.begin(), v.raw.end());
        w.add_raw(key, ck::GgufType::kArray, payload);
        break;
      }
      case ck::GgufType::kF32: w.add_f32(key, static_cast<float>(v.f)); break;
      case ck::GgufType::kF64: w.add_f64(key, v.f); break;
      case ck::GgufType::kBool: w.add_bool(key, v.u != 0); break;
      case ck::GgufType::kU8: w.add_u8(key, static_cast<uint8_t>(v.u)); break;
      case ck::GgufType::kU16: w.add_u16(key, static_cast<uint16_t>(v.u)); break;
      case ck::GgufType::kU32: w.add_u32(key, static_cast<uint32_t>(v.u)); break;
      case ck::GgufType::kU64: w.add_u64(key, v.u); break;
      case ck::GgufType::kI8: w.add_i8(key, static_cast<int8_t>(v.i)); break;
      case ck::GgufType::kI16: w.add_i16(key, static_cast<int16_t>(v.i)); break;
      case ck::GgufType::kI32: w.add_i32(key, static_cast<int32_t>(v.i)); break;
      case ck::GgufType::kI64: w.add_i64(key, v.i); break;
    }
  }
}

std::span<const uint8_t> bytes_of(const std::vector<float>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)};
}

std::vector<float> read_f32(const ck::GgufReader& g, const std::string& name) {
  const ck::TensorInfo& t = g.info(name);
  TESSERA_REQUIRE(t.dtype() == tessera::DType::kF32, tessera::ErrorKind::kUnsupported, name, " must be F32");
  const ck::TensorBytes b = g.data(name);
  std::vector<float> v(static_cast<size_t>(t.elements()));
  std::memcpy(v.data(), b.data, b.size);
  return v;
}

std::vector<float> gaussian(std::mt19937_64& rng, size_t n, float sd) {
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

bool is_dense_ffn(const std::string& n) {
  for (const char* s : {".ffn_gate.weight", ".ffn_up.weight", ".ffn_down.weight"})
    if (n.size() > std::strlen(s) && n.compare(n.size() - std::strlen(s), std::string::npos, s) == 0) return true;
  return false;
}

int run(int argc, char** argv) {
  if (argc < 7) {
    std::fprintf(stderr, "usage: see the comment at the top of make_moe_fixture.cpp\n");
    return 2;
  }
  const std::string mode = argv[1];
  const ck::GgufReader g(argv[2]);
  const std::string out = argv[3];
  const int64_t E = std::stoll(argv[4]), K = std::stoll(argv[5]);
  const bool permuted = mode == "permuted";
  TESSERA_REQUIRE(permuted || mode == "random", tessera::ErrorKind::kInvalidInput, "mode must be permuted or random");
  int a = 6;
  int64_t ffn_random = 0;
  if (!permuted) ffn_random = std::stoll(argv[a++]);
  std::mt19937_64 rng(std::stoull(argv[a++]));
  int64_t meta_experts = E, shared = 0;
  std::string router = "topk";
  bool softmax_gates = false;
  for (; a < argc; ++a) {
    const std::string f = argv[a];
    if (f == "--metadata-experts" && a + 1 < argc) meta_experts = std::stoll(argv[++a]);
    else if (f == "--shared" && a + 1 < argc) shared = std::stoll(argv[++a]);
    else if (f == "--router" && a + 1 < argc) router = argv[++a];
    else if (f == "--softmax-gates") softmax_gates = true;
    else TESSERA_FAIL(tessera::ErrorKind::kInvalidInput, "unknown argument ", f);
  }

  const auto& md = g.metadata();
  const std::string arch = md.get_string("general.architecture");
  const int64_t dim = md.get_u32(arch + ".embedding_length"), n_layers = md.get_u32(arch + ".block_count");
  const int64_t ff = md.get_u32(arch + ".feed_forward_length");
  const int64_t eff = permuted ? ff : ffn_random;

  ck::GgufWriter w;
  // llama.cpp's llama graph sizes the experts from feed_forward_length.
  copy_metadata(g, w, arch + ".feed_forward_length");
  w.add_u32(arch + ".feed_forward_length", static_cast<uint32_t>(eff));
  w.add_u32(arch + ".expert_count", static_cast<uint32_t>(meta_experts));
  w.add_u32(arch + ".expert_used_count", static_cast<uint32_t>(K));
  w.add_u32(arch + ".expert_feed_forward_length", static_cast<uint32_t>(eff));
  w.add_bool(arch + ".expert_weights_norm", !softmax_gates);
  if (router != "topk") w.add_string(arch + ".expert_router", router);
  if (shared > 0) w.add_u32(arch + ".expert_shared_feed_forward_length", static_cast<uint32_t>(shared));

  for (const ck::TensorInfo& t : g.tensors()) {
    if (is_dense_ffn(t.name)) continue;
    const ck::TensorBytes b = g.data(t.name);
    w.add_tensor(t.name, static_cast<uint32_t>(t.format_type), t.shape, {b.data, b.size});
  }
  for (int64_t l = 0; l < n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    // Router [E][dim]: N(0, 1), so tokens spread over the experts.
    w.add_tensor(p + "ffn_gate_inp.weight", 0, {E, dim}, bytes_of(gaussian(rng, E * dim, 1.0f)));
    std::vector<float> gate(E * eff * dim), up(E * eff * dim), down(E * dim * eff);  // [E][eff][dim] x2, [E][dim][eff]
    if (permuted) {
      const std::vector<float> dg = read_f32(g, p + "ffn_gate.weight"), du = read_f32(g, p + "ffn_up.weight"),
                               dd = read_f32(g, p + "ffn_down.weight");  // [ff][dim] x2, [dim][ff]
      std::vector<int64_t> perm(static_cast<size_t>(ff));
      for (int64_t e = 0; e < E; ++e) {
        std::iota(perm.begin(), perm.end(), 0);
        std::shuffle(perm.begin(), perm.end(), rng);
        for (int64_t i = 0; i < ff; ++i) {
          std::memcpy(&gate[(e * ff + i) * dim], &dg[perm[i] * dim], dim * sizeof(float));
          std::memcpy(&up[(e * ff + i) * dim], &du[perm[i] * dim], dim * sizeof(float));
          for (int64_t d = 0; d < dim; ++d) down[(e * dim + d) * ff + i] = dd[d * ff + perm[i]];
        }
      }
    } else {
      gate = gaussian(rng, gate.size(), 1.0f / std::sqrt(static_cast<float>(dim)));
      up = gaussian(rng, up.size(), 1.0f / std::sqrt(static_cast<float>(dim)));
      down = gaussian(rng, down.size(), 1.0f / std::sqrt(static_cast<float>(eff)));
    }
    w.add_tensor(p + "ffn_gate_exps.weight", 0, {E, eff, dim}, bytes_of(gate));
    w.add_tensor(p + "ffn_up_exps.weight", 0, {E, eff, dim}, bytes_of(up));
    w.add_tensor(p + "ffn_down_exps.weight", 0, {E, dim, eff}, bytes_of(down));
    if (shared > 0) {
      const float s_in = 1.0f / std::sqrt(static_cast<float>(dim)), s_out = 1.0f / std::sqrt(static_cast<float>(shared));
      w.add_tensor(p + "ffn_gate_shexp.weight", 0, {shared, dim}, bytes_of(gaussian(rng, shared * dim, s_in)));
      w.add_tensor(p + "ffn_up_shexp.weight", 0, {shared, dim}, bytes_of(gaussian(rng, shared * dim, s_in)));
      w.add_tensor(p + "ffn_down_shexp.weight", 0, {dim, shared}, bytes_of(gaussian(rng, dim * shared, s_out)));
    }
  }
  w.write(out);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_moe_fixture: %s\n", e.what());
    return 1;
  }
}
