// Views into mapped tensor data handed out by Checkpoint: a whole tensor, a range of
// rows (column-parallel splits: each rank owns rows [r0, r1) of the outermost
// dimension), or a range of columns (row-parallel splits: each rank owns columns
// [c0, c1) of the innermost dimension of every row, a strided view).
//
// None of them copies: `data` points into the memory map, valid while the Checkpoint
// lives. Every view handed out is added to Checkpoint::bytes_touched().
#pragma once

#include <cstdint>

namespace tessera::checkpoint {

// A contiguous byte range of one file.
struct TensorBytes {
  const uint8_t* data = nullptr;
  uint64_t file_offset = 0;  // absolute offset of data[0] in the tensor's file
  uint64_t size = 0;         // bytes
};

// Rows [row0, row1) of the outermost dimension. A "row" is everything below the
// outermost index: for shape [out, in] it is `in` elements; for [a, b, c] it is b*c.
struct RowSlice {
  const uint8_t* data = nullptr;  // first byte of row0
  uint64_t file_offset = 0;
  uint64_t size = 0;              // (row1 - row0) * row_bytes
  int64_t row0 = 0, row1 = 0;
  uint64_t row_bytes = 0;         // bytes of one row
};

// Columns [col0, col1) of the innermost (contiguous) dimension, for every one of
// `rows` rows (rows = product of all other dimensions). Row i of the slice starts at
// data + i * row_stride and is row_bytes long. For block-quantised types col0 and
// col1 are multiples of the block size (32 for Q8_0/Q4_0/Q4_1).
struct ColumnSlice {
  const uint8_t* data = nullptr;  // first byte of column col0 in row 0
  uint64_t file_offset = 0;
  int64_t rows = 0;
  int64_t col0 = 0, col1 = 0;
  uint64_t row_stride = 0;        // bytes between consecutive rows (the full row)
  uint64_t row_bytes = 0;         // bytes of columns [col0, col1) in one row
  uint64_t size() const { return static_cast<uint64_t>(rows) * row_bytes; }
};

}  // namespace tessera::checkpoint
