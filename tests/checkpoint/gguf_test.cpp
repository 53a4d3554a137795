// GGUF reader: metadata types and getters, tensor infos, versions, and bad input.
#include <chrono>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "checkpoint/ggml_types.h"
#include "checkpoint/gguf_reader.h"
#include "checkpoint/gguf_writer.h"
#include "common/error.h"
#include "tests/checkpoint/test_files.h"

namespace tessera::checkpoint {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::error_of;
using testing::patch;

std::vector<uint8_t> zeros(size_t n) { return std::vector<uint8_t>(n, 0); }

// A small valid file with every metadata type and a few tensors.
std::vector<uint8_t> sample_file(uint32_t version = 3) {
  GgufWriter w(version);
  w.add_string("general.architecture", "llama");
  w.add_u8("t.u8", 200);
  w.add_i8("t.i8", -100);
  w.add_u16("t.u16", 60000);
  w.add_i16("t.i16", -30000);
  w.add_u32("t.u32", 4000000000u);
  w.add_i32("t.i32", -2000000000);
  w.add_u64("t.u64", 1ull << 40);
  w.add_i64("t.i64", -(1ll << 40));
  w.add_f32("t.f32", 1e-5f);
  w.add_f64("t.f64", 0.125);
  w.add_bool("t.bool", true);
  w.add_string_array("t.strings", {"a", "", "ccc"});
  w.add_f32_array("t.floats", {1.5f, -2.0f});
  w.add_i32_array("t.ints", {7, -8, 9});
  // array<array<u8>>: [[1, 2], [3]]
  std::vector<uint8_t> nested;
  GgufWriter::put_u32(nested, static_cast<uint32_t>(GgufType::kArray));
  GgufWriter::put_u64(nested, 2);
  for (std::vector<uint8_t> inner : {std::vector<uint8_t>{1, 2}, std::vector<uint8_t>{3}}) {
    GgufWriter::put_u32(nested, static_cast<uint32_t>(GgufType::kU8));
    GgufWriter::put_u64(nested, inner.size());
    nested.insert(nested.end(), inner.begin(), inner.end());
  }
  w.add_raw("t.nested", GgufType::kArray, nested);
  w.add_tensor("f32", 0, {3, 4}, zeros(48));
  w.add_tensor("f16", 1, {2, 8}, zeros(32));
  w.add_tensor("bf16", 30, {8}, zeros(16));
  w.add_tensor("q8_0", 8, {2, 64}, zeros(2 * 2 * 34));
  w.add_tensor("q4_0", 2, {32}, zeros(18));
  w.add_tensor("q4_1", 3, {1, 32}, zeros(20));
  w.add_tensor("q4_k", 12, {2, 256}, zeros(2 * 144));
  return w.bytes();
}

TEST(Gguf, MetadataOfEveryType) {
  const std::vector<uint8_t> bytes = sample_file();
  GgufReader r(bytes, "sample.gguf");
  const GgufMetadata& md = r.metadata();
  EXPECT_EQ(r.version(), 3u);
  EXPECT_EQ(r.architecture(), "llama");
  EXPECT_EQ(md.get_u32("t.u8"), 200u);
  EXPECT_EQ(md.get_i32("t.i8"), -100);
  EXPECT_EQ(md.get_u32("t.u16"), 60000u);
  EXPECT_EQ(md.get_i32("t.i16"), -30000);
  EXPECT_EQ(md.get_u32("t.u32"), 4000000000u);
  EXPECT_EQ(md.get_i64("t.u32"), 4000000000);
  EXPECT_EQ(md.get_i32("t.i32"), -2000000000);
  EXPECT_EQ(md.get_u64("t.u64"), 1ull << 40);
  EXPECT_EQ(md.get_i64("t.i64"), -(1ll << 40));
  EXPECT_FLOAT_EQ(md.get_f32("t.f32"), 1e-5f);
  EXPECT_DOUBLE_EQ(md.get_f64("t.f64"), 0.125);
  EXPECT_TRUE(md.get_bool("t.bool"));
  EXPECT_EQ(md.get_string("general.architecture"), "llama");
  EXPECT_EQ(md.get_string_array("t.strings"), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(md.get_f32_array("t.floats"), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(md.get_i32_array("t.ints"), (std::vector<int32_t>{7, -8, 9}));
  EXPECT_EQ(md.array_size("t.strings"), 3u);
  const GgufValue& nested = md.at("t.nested");
  EXPECT_EQ(nested.type_string(), "array<array>[2]");
  std::vector<GgufValue> outer = md.elements(nested, 10);
  ASSERT_EQ(outer.size(), 2u);
  EXPECT_EQ(outer[0].count, 2u);
  EXPECT_EQ(md.elements(outer[0], 10)[1].u, 2u);
  EXPECT_EQ(md.elements(outer[1], 10)[0].u, 3u);
  // Optional variants.
  EXPECT_FALSE(md.opt_u32("absent").has_value());
  EXPECT_EQ(md.opt_u32("t.u32").value(), 4000000000u);
  EXPECT_EQ(md.opt_string("general.architecture").value(), "llama");
  EXPECT_TRUE(md.has("t.bool"));
}

TEST(Gguf, GetterErrorsNameKeyAndTypes) {
  const std::vector<uint8_t> bytes = sample_file();
  GgufReader r(bytes, "sample.gguf");
  const GgufMetadata& md = r.metadata();
  EXPECT_THAT(error_of([&] { md.get_u32("t.f32"); }),
              AllOf(HasSubstr("sample.gguf"), HasSubstr("'t.f32'"), HasSubstr("u32"), HasSubstr("got f32")));
  EXPECT_THAT(error_of([&] { md.get_u32("t.i8"); }), AllOf(HasSubstr("'t.i8'"), HasSubstr("got i8 -100")));
  EXPECT_THAT(error_of([&] { md.get_i32("t.u32"); }), HasSubstr("i32 range"));
  EXPECT_THAT(error_of([&] { md.get_string("t.u8"); }), AllOf(HasSubstr("expected string"), HasSubstr("got u8")));
  EXPECT_THAT(error_of([&] { md.get_bool("t.strings"); }), HasSubstr("got array<string>[3]"));
  EXPECT_THAT(error_of([&] { md.get_string_array("t.floats"); }),
              AllOf(HasSubstr("expected array<string>"), HasSubstr("got array<f32>[2]")));
  EXPECT_THAT(error_of([&] { md.get_f32_array("t.strings"); }), HasSubstr("'t.strings'"));
  EXPECT_THAT(error_of([&] { md.get_u32("no.such.key"); }),
              AllOf(HasSubstr("sample.gguf"), HasSubstr("'no.such.key' not found")));
  EXPECT_THAT(error_of([&] { md.opt_f32("t.strings"); }), HasSubstr("expected f32 or f64"));
  try {
    md.get_u32("no.such.key");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
  }
}

TEST(Gguf, EmptyArrays) {  // found by fuzz_gguf: memcpy into an empty vector
  GgufWriter w;
  w.add_f32_array("f", {});
  w.add_i32_array("i", {});
  w.add_string_array("s", {});
  const std::vector<uint8_t> b = w.bytes();
  GgufReader r(b, "e.gguf");
  EXPECT_TRUE(r.metadata().get_f32_array("f").empty());
  EXPECT_TRUE(r.metadata().get_i32_array("i").empty());
  EXPECT_TRUE(r.metadata().get_string_array("s").empty());
}

TEST(Gguf, FloatOutOfF32RangeIsAnError) {
  GgufWriter w;
  w.add_f64("big", 1e300);
  w.add_f64("small", 0.25);
  const std::vector<uint8_t> b = w.bytes();
  GgufReader r(b, "f.gguf");
  EXPECT_THAT(error_of([&] { r.metadata().get_f32("big"); }), HasSubstr("does not fit in f32"));
  EXPECT_EQ(r.metadata().get_f32("small"), 0.25f);
  EXPECT_EQ(r.metadata().get_f64("big"), 1e300);
}

TEST(Gguf, TensorInfosShapeReversedAndTypes) {
  const std::vector<uint8_t> bytes = sample_file();
  GgufReader r(bytes, "sample.gguf");
  ASSERT_EQ(r.tensors().size(), 7u);
  EXPECT_EQ(r.tensors()[0].name, "f32");  // file order
  const TensorInfo& f32 = r.info("f32");
  EXPECT_EQ(f32.shape, (std::vector<int64_t>{3, 4}));  // written as ne = {4, 3}
  EXPECT_EQ(f32.dtype(), DType::kF32);
  EXPECT_EQ(f32.size, 48u);
  EXPECT_EQ(f32.offset, r.data_offset());
  EXPECT_EQ(r.data_offset() % 32, 0u);
  EXPECT_EQ(r.info("f16").dtype(), DType::kF16);
  EXPECT_EQ(r.info("bf16").dtype(), DType::kBF16);
  EXPECT_EQ(r.info("q8_0").dtype(), DType::kQ8_0);
  EXPECT_EQ(r.info("q8_0").size, 136u);
  EXPECT_EQ(r.info("q4_0").dtype(), DType::kQ4_0);
  EXPECT_EQ(r.info("q4_1").dtype(), DType::kQ4_1);
  const TensorInfo& k = r.info("q4_k");
  EXPECT_EQ(k.type_name, "Q4_K");
  EXPECT_EQ(k.size, 288u);
  EXPECT_FALSE(k.dtype_opt.has_value());
  try {
    k.dtype();
    FAIL() << "expected kUnsupported";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_THAT(e.what(), AllOf(HasSubstr("'q4_k'"), HasSubstr("Q4_K"), HasSubstr("sample.gguf")));
  }
  for (const TensorInfo& t : r.tensors()) EXPECT_EQ(t.offset % 32, 0u) << t.name;
  EXPECT_THAT(error_of([&] { r.info("missing.weight"); }),
              AllOf(HasSubstr("sample.gguf"), HasSubstr("'missing.weight' not found")));
}

TEST(Gguf, GgmlTypeTableSizes) {
  // Spot checks against ggml-common.h block structs.
  EXPECT_EQ(ggml_type(10)->block_bytes, 84);   // Q2_K
  EXPECT_EQ(ggml_type(11)->block_bytes, 110);  // Q3_K
  EXPECT_EQ(ggml_type(13)->block_bytes, 176);  // Q5_K
  EXPECT_EQ(ggml_type(14)->block_bytes, 210);  // Q6_K
  EXPECT_EQ(ggml_type(15)->block_bytes, 292);  // Q8_K
  EXPECT_EQ(ggml_type(6)->block_bytes, 22);    // Q5_0
  EXPECT_EQ(ggml_type(23)->name, "IQ4_XS");
  EXPECT_EQ(ggml_type(39)->name, "MXFP4");
  EXPECT_EQ(ggml_type(4), nullptr);
  EXPECT_EQ(ggml_type(1000), nullptr);
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0, DType::kQ4_1}) {
    const GgmlType* g = ggml_type(ggml_type_id(t));
    ASSERT_NE(g, nullptr);
    EXPECT_EQ(g->dtype, t);
    EXPECT_EQ(g->block_elems, dtype_block_elems(t));
    EXPECT_EQ(g->block_bytes, dtype_block_bytes(t));
  }
}

TEST(Gguf, Version2AcceptedVersion1And4Rejected) {
  const std::vector<uint8_t> v2 = sample_file(2);
  EXPECT_EQ(GgufReader(v2, "v2.gguf").version(), 2u);
  std::vector<uint8_t> v1 = sample_file();
  patch<uint32_t>(v1, 4, 1);
  try {
    GgufReader(v1, "v1.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_THAT(e.what(), AllOf(HasSubstr("v1.gguf"), HasSubstr("version 1")));
  }
  patch<uint32_t>(v1, 4, 4);
  EXPECT_THAT(error_of([&] { GgufReader(v1, "v4.gguf"); }),
              AllOf(HasSubstr("unsupported GGUF version 4"), HasSubstr("byte offset 4")));
}

TEST(Gguf, WrongMagic) {
  std::vector<uint8_t> b = sample_file();
  b[0] = 'X';
  EXPECT_THAT(error_of([&] { GgufReader(b, "bad.gguf"); }),
              AllOf(HasSubstr("bad.gguf"), HasSubstr("not a GGUF file")));
}

TEST(Gguf, TruncatedAtEveryByteThrows) {
  const std::vector<uint8_t> full = sample_file();
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    const std::string msg = error_of([&] { GgufReader(cut, "cut.gguf"); });
    // The final padding after the last tensor is not data: cuts there are still valid.
    if (msg == "<no error>") {
      GgufReader r(cut, "cut.gguf");
      const TensorInfo& last = r.tensors().back();
      EXPECT_GE(n, last.offset + last.size) << "cut at " << n;
      continue;
    }
    EXPECT_THAT(msg, HasSubstr("cut.gguf")) << "cut at " << n;
    EXPECT_THAT(msg, ::testing::AnyOf(HasSubstr("truncated at byte offset"), HasSubstr("exceeds"),
                                      HasSubstr("cannot fit")))
        << "cut at " << n << ": " << msg;
  }
}

// Offsets for patching a file with one metadata pair "k" (key length 1): the value
// type is at 33 and the value at 37.
std::vector<uint8_t> one_kv(const std::function<void(GgufWriter&)>& add) {
  GgufWriter w;
  add(w);
  return w.bytes();
}

TEST(Gguf, AbsurdCountsAreRejectedBeforeAllocating) {
  std::vector<uint8_t> b = sample_file();
  patch<uint64_t>(b, 8, 1ull << 62);
  EXPECT_THAT(error_of([&] { GgufReader(b, "x.gguf"); }),
              AllOf(HasSubstr("tensor count 4611686018427387904"), HasSubstr("cannot fit")));
  b = sample_file();
  patch<uint64_t>(b, 16, 1ull << 62);
  EXPECT_THAT(error_of([&] { GgufReader(b, "x.gguf"); }), HasSubstr("metadata count"));

  b = one_kv([](GgufWriter& w) { w.add_string("k", "hello"); });
  patch<uint64_t>(b, 37, 1ull << 40);
  EXPECT_THAT(error_of([&] { GgufReader(b, "x.gguf"); }),
              AllOf(HasSubstr("'k'"), HasSubstr("string length 1099511627776"), HasSubstr("byte offset 37")));

  b = one_kv([](GgufWriter& w) { w.add_f32_array("k", {1, 2, 3}); });
  patch<uint64_t>(b, 41, 1ull << 50);
  EXPECT_THAT(error_of([&] { GgufReader(b, "x.gguf"); }),
              AllOf(HasSubstr("'k'"), HasSubstr("array of 1125899906842624 f32"), HasSubstr("cannot fit")));

  b = one_kv([](GgufWriter& w) { w.add_string_array("k", {"a", "b"}); });
  patch<uint64_t>(b, 41, 1ull << 50);
  EXPECT_THAT(error_of([&] { GgufReader(b, "x.gguf"); }), HasSubstr("cannot fit"));

  b = one_kv([](GgufWriter& w) { w.add_u32("k", 1); });
  patch<uint32_t>(b, 33, 13);
  EXPECT_THAT(error_of([&] { GgufReader(b, "x.gguf"); }),
              AllOf(HasSubstr("unknown value type 13"), HasSubstr("byte offset 33")));

  b = one_kv([](GgufWriter& w) { w.add_u32("k", 1); });
  patch<uint64_t>(b, 24, 1ull << 40);
  EXPECT_THAT(error_of([&] { GgufReader(b, "x.gguf"); }), HasSubstr("key length 1099511627776"));
}

TEST(Gguf, DeeplyNestedArraysRejected) {
  std::vector<uint8_t> v;
  for (int d = 0; d < 20; ++d) {
    GgufWriter::put_u32(v, static_cast<uint32_t>(GgufType::kArray));
    GgufWriter::put_u64(v, 1);
  }
  GgufWriter::put_u32(v, static_cast<uint32_t>(GgufType::kU8));
  GgufWriter::put_u64(v, 0);
  std::vector<uint8_t> b = one_kv([&](GgufWriter& w) { w.add_raw("k", GgufType::kArray, v); });
  EXPECT_THAT(error_of([&] { GgufReader(b, "x.gguf"); }), HasSubstr("nested deeper"));
}

// One tensor "t" (name length 1) with 2 dims: n_dims at 33, ne[0] at 37, ne[1] at 45,
// type at 53, offset at 57.
std::vector<uint8_t> one_tensor() {
  GgufWriter w;
  w.add_tensor("t", 0, {2, 4}, zeros(32));
  return w.bytes();
}

TEST(Gguf, BadTensorInfos) {
  std::vector<uint8_t> b = one_tensor();
  EXPECT_EQ(GgufReader(b, "ok.gguf").info("t").shape, (std::vector<int64_t>{2, 4}));

  patch<uint32_t>(b, 33, 9);
  EXPECT_THAT(error_of([&] { GgufReader(b, "x.gguf"); }),
              AllOf(HasSubstr("'t'"), HasSubstr("n_dims 9"), HasSubstr("byte offset 33")));

  b = one_tensor();
  patch<int64_t>(b, 37, 1ll << 40);
  patch<int64_t>(b, 45, 1ll << 40);
  EXPECT_THAT(error_of([&] { GgufReader(b, "x.gguf"); }),
              AllOf(HasSubstr("'t'"), HasSubstr("overflows")));

  b = one_tensor();
  patch<int64_t>(b, 37, -4);
  EXPECT_THAT(error_of([&] { GgufReader(b, "x.gguf"); }), HasSubstr("negative"));

  b = one_tensor();
  patch<int64_t>(b, 45, 1000);  // 4000 elements: data range beyond the file
  EXPECT_THAT(error_of([&] { GgufReader(b, "x.gguf"); }),
              AllOf(HasSubstr("'t'"), HasSubstr("exceeds the file size")));

  b = one_tensor();
  patch<uint32_t>(b, 53, 77);
  try {
    GgufReader(b, "x.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_THAT(e.what(), AllOf(HasSubstr("unknown ggml type id 77"), HasSubstr("byte offset 53")));
  }

  b = one_tensor();
  patch<uint32_t>(b, 53, 8);  // Q8_0 with ne[0] = 4: not a whole block
  EXPECT_THAT(error_of([&] { GgufReader(b, "x.gguf"); }), HasSubstr("not a multiple of the Q8_0 block size 32"));

  b = one_tensor();
  patch<uint64_t>(b, 57, 4);
  EXPECT_THAT(error_of([&] { GgufReader(b, "x.gguf"); }),
              AllOf(HasSubstr("data offset 4"), HasSubstr("alignment 32"), HasSubstr("byte offset 57")));

  b = one_tensor();
  patch<uint64_t>(b, 57, 1ull << 63);
  EXPECT_THAT(error_of([&] { GgufReader(b, "x.gguf"); }), HasSubstr("exceeds the file size"));
}

TEST(Gguf, DuplicateAndOverlappingTensors) {
  GgufWriter w;
  w.add_tensor("same", 0, {8}, zeros(32));
  w.add_tensor("same", 0, {8}, zeros(32));
  std::vector<uint8_t> b = w.bytes();
  EXPECT_THAT(error_of([&] { GgufReader(b, "dup.gguf"); }),
              AllOf(HasSubstr("dup.gguf"), HasSubstr("duplicate tensor name 'same'")));

  GgufWriter w2;
  w2.add_tensor("a", 0, {16}, zeros(64));
  w2.add_tensor("b", 0, {8}, zeros(32));
  b = w2.bytes();
  // b's info: a's info is 8+1+4+8+4+8 = 33 bytes from 24; b's offset field is at
  // 24 + 33 + 8 + 1 + 4 + 8 + 4 = 82. Point it into a.
  patch<uint64_t>(b, 82, 32);
  EXPECT_THAT(error_of([&] { GgufReader(b, "ov.gguf"); }), AllOf(HasSubstr("'a'"), HasSubstr("'b'"), HasSubstr("overlap")));
}

TEST(Gguf, AlignmentKey) {
  GgufWriter w(3, 64);
  w.add_tensor("t", 0, {3}, zeros(12));
  w.add_tensor("u", 0, {3}, zeros(12));
  std::vector<uint8_t> b = w.bytes();
  GgufReader r(b, "a.gguf");
  EXPECT_EQ(r.alignment(), 64u);
  EXPECT_EQ(r.info("u").offset - r.info("t").offset, 64u);

  GgufWriter bad;
  bad.add_u32("general.alignment", 24);
  b = bad.bytes();
  EXPECT_THAT(error_of([&] { GgufReader(b, "a.gguf"); }),
              AllOf(HasSubstr("general.alignment"), HasSubstr("power of two")));
}

TEST(Gguf, LargeTokenizerArrayLoadsFast) {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  for (int i = 0; i < 150000; ++i) {
    tokens.push_back("tok" + std::to_string(i));
    scores.push_back(static_cast<float>(i));
  }
  GgufWriter w;
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_f32_array("tokenizer.ggml.scores", scores);
  const std::vector<uint8_t> b = w.bytes();
  const auto t0 = std::chrono::steady_clock::now();
  GgufReader r(b, "tok.gguf");
  const std::vector<std::string> got = r.metadata().get_string_array("tokenizer.ggml.tokens");
  const std::vector<float> got_scores = r.metadata().get_f32_array("tokenizer.ggml.scores");
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(got, tokens);
  EXPECT_EQ(got_scores, scores);
  EXPECT_LT(ms, 1000.0);  // typically ~10 ms; generous for sanitizer / debug builds
}

TEST(Gguf, WriterRoundTripThroughFile) {
  testing::TempDir dir;
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  std::vector<float> v = {1, 2, 3, 4};
  w.add_tensor("w", 0, {2, 2}, {reinterpret_cast<const uint8_t*>(v.data()), 16});
  w.write(dir.file("m.gguf"));
  GgufReader r(dir.file("m.gguf"));
  EXPECT_EQ(r.path(), dir.file("m.gguf"));
  const TensorBytes d = r.data("w");
  EXPECT_EQ(std::memcmp(d.data, v.data(), 16), 0);
  EXPECT_THAT(error_of([&] { GgufReader(dir.file("absent.gguf")); }), HasSubstr("absent.gguf"));
}

}  // namespace
}  // namespace tessera::checkpoint
