// Row and column slices: pointers, byte ranges, strides, bytes_touched accounting.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "checkpoint/gguf_reader.h"
#include "checkpoint/gguf_writer.h"
#include "common/error.h"
#include "tests/checkpoint/test_files.h"

namespace tessera::checkpoint {
namespace {

using ::testing::HasSubstr;
using testing::error_of;

std::vector<uint8_t> model() {
  GgufWriter w;
  std::vector<float> m(6 * 8);
  for (size_t i = 0; i < m.size(); ++i) m[i] = static_cast<float>(i);
  w.add_tensor("m", 0, {6, 8}, {reinterpret_cast<const uint8_t*>(m.data()), m.size() * 4});
  w.add_tensor("q", 8, {4, 64}, std::vector<uint8_t>(4 * 2 * 34, 0));
  w.add_tensor("v", 0, {8}, std::vector<uint8_t>(32, 0));
  w.add_tensor("t3", 0, {2, 3, 4}, std::vector<uint8_t>(96, 0));
  return w.bytes();
}

TEST(Slices, RowsOfF32Matrix) {
  const std::vector<uint8_t> b = model();
  GgufReader r(b, "s.gguf");
  EXPECT_EQ(r.bytes_touched(), 0u);
  const RowSlice s = r.rows("m", 2, 5);
  EXPECT_EQ(s.row_bytes, 32u);
  EXPECT_EQ(s.size, 96u);
  EXPECT_EQ(s.file_offset, r.info("m").offset + 64);
  float first;
  std::memcpy(&first, s.data, 4);
  EXPECT_EQ(first, 16.f);
  EXPECT_EQ(r.bytes_touched(), 96u);
  const RowSlice empty = r.rows("m", 6, 6);
  EXPECT_EQ(empty.size, 0u);
  EXPECT_THAT(error_of([&] { r.rows("m", 4, 7); }), HasSubstr("row range [4, 7) is outside [0, 6)"));
  EXPECT_THAT(error_of([&] { r.rows("m", -1, 2); }), HasSubstr("'m'"));
  EXPECT_THAT(error_of([&] { r.rows("absent", 0, 1); }), HasSubstr("'absent' not found"));
}

TEST(Slices, RowsOfQuantizedAndHigherRank) {
  const std::vector<uint8_t> b = model();
  GgufReader r(b, "s.gguf");
  const RowSlice q = r.rows("q", 1, 3);
  EXPECT_EQ(q.row_bytes, 68u);  // 64 elements = 2 Q8_0 blocks
  EXPECT_EQ(q.file_offset, r.info("q").offset + 68);
  const RowSlice t = r.rows("t3", 1, 2);
  EXPECT_EQ(t.row_bytes, 48u);  // 3 x 4 floats
  const RowSlice v = r.rows("v", 2, 4);  // 1-D: a row is one element
  EXPECT_EQ(v.row_bytes, 4u);
}

TEST(Slices, ColumnsAreStrided) {
  const std::vector<uint8_t> b = model();
  GgufReader r(b, "s.gguf");
  const ColumnSlice c = r.columns("m", 2, 6);
  EXPECT_EQ(c.rows, 6);
  EXPECT_EQ(c.row_stride, 32u);
  EXPECT_EQ(c.row_bytes, 16u);
  EXPECT_EQ(c.size(), 96u);
  for (int64_t i = 0; i < c.rows; ++i) {
    float v;
    std::memcpy(&v, c.data + i * c.row_stride, 4);
    EXPECT_EQ(v, static_cast<float>(i * 8 + 2));
  }
  EXPECT_EQ(r.bytes_touched(), 96u);
  const ColumnSlice q = r.columns("q", 32, 64);
  EXPECT_EQ(q.row_bytes, 34u);
  EXPECT_EQ(q.row_stride, 68u);
  EXPECT_EQ(q.file_offset, r.info("q").offset + 34);
  EXPECT_THAT(error_of([&] { r.columns("q", 16, 64); }), HasSubstr("Q8_0 block boundaries"));
  EXPECT_THAT(error_of([&] { r.columns("m", 0, 9); }), HasSubstr("outside [0, 8)"));
}

TEST(Slices, RanksTouchAboutOneNth) {
  const std::vector<uint8_t> b = model();
  GgufReader r(b, "s.gguf");
  const int kRanks = 3;
  for (int rank = 0; rank < kRanks; ++rank) {
    r.reset_bytes_touched();
    r.rows("m", rank * 2, rank * 2 + 2);
    EXPECT_EQ(r.bytes_touched(), r.info("m").size / kRanks);
  }
  r.reset_bytes_touched();
  r.data("m");
  EXPECT_EQ(r.bytes_touched(), r.info("m").size);
}

}  // namespace
}  // namespace tessera::checkpoint
