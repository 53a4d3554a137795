// A checkpoint that does not fit the model family gives an error naming the file, the
// tensor or key, and what was expected: never a crash or a silent wrong answer.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "checkpoint/ggml_types.h"
#include "checkpoint/gguf_reader.h"
#include "checkpoint/gguf_writer.h"
#include "common/error.h"
#include "kernels/thread_pool.h"
#include "model/loader.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;
const std::string kGguf = std::string(TESSERA_ASSETS) + "/models/stories260K/stories260K.gguf";

struct Edits {
  std::function<bool(const std::string&)> drop_key = [](const std::string&) { return false; };
  std::string arch = "llama";
  uint32_t head_count_kv = 4;
  std::string drop_tensor;
  std::string reshape_tensor;       // rewritten with its two dims swapped
  std::string retype_tensor;        // declared as Q4_K (ggml type 12) instead of F32
};

// Rebuilds stories260K.gguf with the llama hyperparameters and its tensors, applying edits.
std::string write_variant(const std::string& name, const Edits& e) {
  checkpoint::GgufReader src(kGguf);
  checkpoint::GgufWriter w;
  auto u32 = [&](const std::string& key, uint32_t v) {
    if (!e.drop_key(key)) w.add_u32(key, v);
  };
  w.add_string("general.architecture", e.arch);
  const std::string a = e.arch + ".";
  u32(a + "embedding_length", 64);
  u32(a + "block_count", 5);
  u32(a + "feed_forward_length", 172);
  u32(a + "attention.head_count", 8);
  u32(a + "attention.head_count_kv", e.head_count_kv);
  u32(a + "context_length", 512);
  for (const auto& t : src.tensors()) {
    if (t.name == e.drop_tensor) continue;
    auto bytes = src.data(t.name);
    std::span<const uint8_t> data(bytes.data, bytes.size);
    std::vector<int64_t> shape = t.shape;
    uint32_t type = 0;  // F32
    std::vector<uint8_t> q4k;
    if (t.name == e.reshape_tensor && shape.size() == 2) std::swap(shape[0], shape[1]);
    if (t.name == e.retype_tensor) {
      type = 12;  // Q4_K: 256 elements in 144 bytes
      const int64_t n = t.elements();
      q4k.assign(static_cast<size_t>(n / 256 * 144), 0);
      data = q4k;
      shape = {n / 256, 256};
    }
    w.add_tensor(t.name, type, shape, data);
  }
  const std::string path = (fs::temp_directory_path() / ("tessera_bad_" + name + ".gguf")).string();
  w.write(path);
  return path;
}

void expect_load_error(const std::string& path, ErrorKind kind, std::initializer_list<std::string> parts) {
  kernels::ThreadPool pool(1);
  try {
    (void)load_model(path, pool);
    ADD_FAILURE() << "loading " << path << " should fail";
  } catch (const Error& err) {
    EXPECT_EQ(err.kind(), kind) << err.what();
    for (const auto& p : parts) EXPECT_NE(std::string(err.what()).find(p), std::string::npos) << err.what();
  }
  std::remove(path.c_str());
}

TEST(BadModel, UnchangedVariantLoads) {
  const std::string path = write_variant("ok", Edits{});
  kernels::ThreadPool pool(1);
  EXPECT_NO_THROW((void)load_model(path, pool));
  std::remove(path.c_str());
}

TEST(BadModel, MissingTensorIsNamed) {
  Edits e;
  e.drop_tensor = "blk.3.ffn_up.weight";
  expect_load_error(write_variant("missing", e), ErrorKind::kNotFound, {"blk.3.ffn_up.weight", "tessera_bad_missing"});
}

TEST(BadModel, WrongShapeIsNamedWithBothShapes) {
  Edits e;
  e.reshape_tensor = "blk.1.attn_k.weight";
  expect_load_error(write_variant("shape", e), ErrorKind::kInvalidInput,
                    {"blk.1.attn_k.weight", "[64, 32]", "expected [32, 64]"});
}

TEST(BadModel, MissingHyperparameterIsNamed) {
  Edits e;
  e.drop_key = [](const std::string& k) { return k == "llama.block_count"; };
  expect_load_error(write_variant("key", e), ErrorKind::kNotFound, {"llama.block_count"});
}

TEST(BadModel, UnsupportedArchitectureIsNamed) {
  Edits e;
  e.arch = "gptneox";
  expect_load_error(write_variant("arch", e), ErrorKind::kUnsupported, {"gptneox"});
}

TEST(BadModel, InconsistentHeadsAreNamed) {
  Edits e;
  e.head_count_kv = 3;
  expect_load_error(write_variant("heads", e), ErrorKind::kInvalidInput, {"n_kv_heads", "3"});
}

TEST(BadModel, UnsupportedDtypeIsNamed) {
  Edits e;
  e.retype_tensor = "blk.0.ffn_gate.weight";
  expect_load_error(write_variant("dtype", e), ErrorKind::kUnsupported, {"blk.0.ffn_gate.weight", "Q4_K"});
}

TEST(BadModel, HfConfigMissingFieldIsNamed) {
  const fs::path dir = fs::temp_directory_path() / "tessera_bad_hf";
  fs::create_directories(dir);
  const fs::path src = fs::path(TESSERA_TEST_DATA) / "hf_tiny_llama";
  fs::copy_file(src / "model.safetensors", dir / "model.safetensors", fs::copy_options::overwrite_existing);
  std::ofstream(dir / "config.json") << R"({"model_type": "llama", "num_hidden_layers": 3})";
  kernels::ThreadPool pool(1);
  try {
    (void)load_model(dir.string(), pool);
    ADD_FAILURE() << "should fail";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("hidden_size"), std::string::npos) << err.what();
    EXPECT_NE(std::string(err.what()).find("config.json"), std::string::npos) << err.what();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tessera
