// safetensors reader: single file, sharded index, config.json, validation errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "checkpoint/open.h"
#include "checkpoint/safetensors_reader.h"
#include "common/error.h"
#include "tests/checkpoint/test_files.h"

namespace tessera::checkpoint {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::error_of;
using testing::make_safetensors;
using testing::make_safetensors_raw;
using testing::StTensor;
using testing::TempDir;

TEST(Safetensors, SingleFile) {
  // Packed largest element first, as the reference writer does, so every tensor is
  // naturally aligned.
  const std::vector<uint8_t> b = make_safetensors(
      {{"ids", "I64", {3}, 8}, {"d", "F64", {1}, 8}, {"b.weight", "F32", {2, 3}, 4},
       {"i", "I32", {2}, 4}, {"a.weight", "F16", {4}, 2}, {"c", "BF16", {1, 2, 2}, 2},
       {"bytes", "U8", {5}, 1}, {"q", "I8", {3}, 1}},
      R"({"format":"pt"})");
  SafetensorsReader r(b, "m.safetensors");
  ASSERT_EQ(r.tensors().size(), 8u);
  EXPECT_EQ(r.tensors()[0].name, "ids");  // data order
  EXPECT_EQ(r.tensors()[2].name, "b.weight");
  EXPECT_EQ(r.info("b.weight").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(r.info("b.weight").dtype(), DType::kF32);
  EXPECT_EQ(r.info("a.weight").dtype(), DType::kF16);
  EXPECT_EQ(r.info("c").dtype(), DType::kBF16);
  EXPECT_EQ(r.info("i").dtype(), DType::kI32);
  EXPECT_EQ(r.info("ids").type_name, "I64");
  EXPECT_THAT(error_of([&] { r.info("ids").dtype(); }), AllOf(HasSubstr("'ids'"), HasSubstr("I64")));
  EXPECT_THAT(error_of([&] { r.info("d").dtype(); }), HasSubstr("F64"));
  ASSERT_EQ(r.metadata().size(), 1u);
  EXPECT_EQ(r.metadata()[0].second, "pt");
  EXPECT_EQ(r.data("ids").data[0], 1);  // first data byte
  EXPECT_EQ(r.info("b.weight").offset % 8, 0u);
  EXPECT_THAT(error_of([&] { r.info("nope"); }), AllOf(HasSubstr("m.safetensors"), HasSubstr("'nope'")));
}

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  uint64_t b, uint64_t e) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
         std::to_string(b) + "," + std::to_string(e) + "]}";
}

std::string error_for(const std::string& header, size_t data) {
  const std::vector<uint8_t> b = make_safetensors_raw(header, data);
  return error_of([&] { SafetensorsReader(b, "bad.safetensors"); });
}

TEST(Safetensors, ValidationErrors) {
  EXPECT_THAT(error_for("{" + entry("t", "F32", "[2]", 0, 8) + "}", 4),
              AllOf(HasSubstr("bad.safetensors"), HasSubstr("'t'"), HasSubstr("exceeds the file size")));
  EXPECT_THAT(error_for("{" + entry("t", "F32", "[3]", 0, 8) + "}", 8),
              AllOf(HasSubstr("'t'"), HasSubstr("hold 8 bytes"), HasSubstr("needs 12")));
  EXPECT_THAT(error_for("{" + entry("t", "F32", "[2]", 8, 0) + "}", 8), HasSubstr("out of order"));
  EXPECT_THAT(error_for("{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 4, 12) + "}", 16),
              AllOf(HasSubstr("'a'"), HasSubstr("'b'"), HasSubstr("overlap")));
  EXPECT_THAT(error_for("{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("a", "F32", "[2]", 8, 16) + "}", 16),
              HasSubstr("duplicate tensor name 'a'"));
  EXPECT_THAT(error_for("{" + entry("t", "F33", "[2]", 0, 8) + "}", 8), HasSubstr("unknown dtype 'F33'"));
  EXPECT_THAT(error_for("{" + entry("t", "F32", "[1,1,1,1,1,1,1,1,1]", 0, 4) + "}", 8),
              HasSubstr("9 dimensions"));
  EXPECT_THAT(error_for("{" + entry("t", "F32", "[4294967296,4294967296]", 0, 4) + "}", 8),
              AllOf(HasSubstr("'t'"), HasSubstr("overflows")));
  EXPECT_THAT(error_for("{" + entry("t", "F32", "[-1]", 0, 4) + "}", 8), HasSubstr("shape[0]"));
  // The header is padded to 8 bytes, so data_offsets [2, 6) puts an F32 at file
  // offset 8 + H + 2: not a multiple of 4.
  std::string h = "{" + entry("t", "F32", "[1]", 2, 6) + "}";
  while (h.size() % 8 != 0) h += ' ';
  EXPECT_THAT(error_for(h, 8),
              AllOf(HasSubstr("misaligned"), HasSubstr("'t'")));
  EXPECT_THAT(error_for("{\"t\":{\"dtype\":\"F32\"}}", 8), HasSubstr("no \"shape\""));
  EXPECT_THAT(error_for("[1,2]", 0), HasSubstr("not a JSON object"));
  EXPECT_THAT(error_for("{\"t\": ", 0), AllOf(HasSubstr("bad.safetensors"), HasSubstr("byte offset 8")));
  std::vector<uint8_t> b = make_safetensors_raw("{}", 0);
  testing::patch<uint64_t>(b, 0, 1ull << 60);
  EXPECT_THAT(error_of([&] { SafetensorsReader(b, "big.safetensors"); }),
              AllOf(HasSubstr("header length 1152921504606846976"), HasSubstr("exceeds")));
  std::vector<uint8_t> tiny = {1, 2, 3};
  EXPECT_THAT(error_of([&] { SafetensorsReader(tiny, "tiny.safetensors"); }), HasSubstr("truncated"));
}

TEST(Safetensors, TruncatedAtEveryByte) {
  const std::vector<uint8_t> full = make_safetensors({{"a", "F32", {4}, 4}, {"b", "F16", {4}, 2}});
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THAT(error_of([&] { SafetensorsReader(cut, "cut.safetensors"); }), HasSubstr("cut.safetensors"))
        << n;
  }
}

TEST(Safetensors, ShardedWithConfig) {
  TempDir dir;
  dir.write("model-00001-of-00002.safetensors",
            make_safetensors({{"embed", "F32", {4, 2}, 4}, {"layer.0", "F16", {2, 2}, 2}}));
  dir.write("model-00002-of-00002.safetensors", make_safetensors({{"layer.1", "BF16", {2, 2}, 2}}));
  dir.write("model.safetensors.index.json",
            std::string(R"({"metadata":{"total_size":48},"weight_map":{)"
                        R"("embed":"model-00001-of-00002.safetensors",)"
                        R"("layer.1":"model-00002-of-00002.safetensors",)"
                        R"("layer.0":"model-00001-of-00002.safetensors"}})"));
  dir.write("config.json", std::string(R"({"model_type":"llama","hidden_size":2,"architectures":["LlamaForCausalLM"]})"));
  auto ck = open_checkpoint(dir.path());
  auto* st = dynamic_cast<SafetensorsReader*>(ck.get());
  ASSERT_NE(st, nullptr);
  EXPECT_TRUE(st->sharded());
  EXPECT_EQ(ck->files().size(), 2u);
  EXPECT_EQ(ck->tensors().size(), 3u);
  EXPECT_EQ(ck->info("layer.1").file_index, 1u);
  EXPECT_EQ(ck->architecture(), "llama");
  ASSERT_NE(st->config(), nullptr);
  EXPECT_EQ(st->config()->at("hidden_size").as_int(), 2);
  EXPECT_THAT(error_of([&] { ck->info("layer.2"); }),
              AllOf(HasSubstr("model.safetensors.index.json"), HasSubstr("'layer.2'")));

  // A tensor the index assigns to a shard that lacks it.
  dir.write("model.safetensors.index.json",
            std::string(R"({"weight_map":{"embed":"model-00001-of-00002.safetensors",)"
                        R"("ghost":"model-00002-of-00002.safetensors"}})"));
  EXPECT_THAT(error_of([&] { open_checkpoint(dir.path()); }),
              AllOf(HasSubstr("'ghost'"), HasSubstr("model-00002-of-00002.safetensors"),
                    HasSubstr("does not contain it")));
  // A missing shard file.
  dir.write("model.safetensors.index.json",
            std::string(R"({"weight_map":{"embed":"model-00003-of-00003.safetensors"}})"));
  EXPECT_THAT(error_of([&] { open_checkpoint(dir.path()); }),
              AllOf(HasSubstr("model-00003-of-00003.safetensors"), HasSubstr("does not exist"), HasSubstr("'embed'")));
  // The same tensor in two shards.
  dir.write("model-00002-of-00002.safetensors",
            make_safetensors({{"embed", "F32", {4, 2}, 4}, {"x", "F32", {2}, 4}}));
  dir.write("model.safetensors.index.json",
            std::string(R"({"weight_map":{"embed":"model-00001-of-00002.safetensors",)"
                        R"("x":"model-00002-of-00002.safetensors"}})"));
  EXPECT_THAT(error_of([&] { open_checkpoint(dir.path()); }),
              AllOf(HasSubstr("duplicate tensor name 'embed'"), HasSubstr("model-00002-of-00002")));
  // Malformed index JSON.
  dir.write("model.safetensors.index.json", std::string("{\"weight_map\": {"));
  EXPECT_THAT(error_of([&] { open_checkpoint(dir.path()); }), HasSubstr("model.safetensors.index.json"));
}

TEST(Safetensors, OpenByPathDetectsFormats) {
  TempDir dir;
  const std::string st = dir.write("w.safetensors", make_safetensors({{"x", "F32", {2}, 4}}));
  EXPECT_EQ(open_checkpoint(st)->format(), "safetensors");
  const std::string noext = dir.write("weights", make_safetensors({{"x", "F32", {2}, 4}}));
  EXPECT_EQ(open_checkpoint(noext)->format(), "safetensors");
  EXPECT_THAT(error_of([&] { open_checkpoint(dir.file("nothing")); }), HasSubstr("nothing"));
  const std::string junk = dir.write("junk.txt", std::string("hello world"));
  EXPECT_THAT(error_of([&] { open_checkpoint(junk); }), HasSubstr("unknown checkpoint format"));
  const std::string fake_gguf = dir.write("fake.gguf", std::string("GGUX0000000000000000000000"));
  EXPECT_THAT(error_of([&] { open_checkpoint(fake_gguf); }), HasSubstr("not a GGUF file"));
}

}  // namespace
}  // namespace tessera::checkpoint
