// Q8_0 repacked for the AVX-512 VNNI matmul: 16 rows interleaved (WeightLayout::kQ8Rows16).
//
// Why: the self-speculation draft (model/int8_copy) is a Q8_0 copy made at load, so its
// layout is ours to choose. GGUF's Q8_0 rows (34-byte blocks, scale inline) cost the
// one-token GEMV ~35 vector ops per 256 weights (unaligned loads, word permutes to
// separate scales from quants, a horizontal sum per row) and read only ~11 GB/s on one
// core where the F32 GEMV reads ~14. Interleaving 16 rows puts one output row in each
// int32 lane of a zmm: a 64-byte load holds 4 consecutive k of 16 rows, vpdpbusd with the
// 4 matching activation bytes broadcast adds them into the 16 row sums, and no
// horizontal sum is left at the end. ~12 ops per 512 weights for one token, and the
// weight register is reused for every further token (small-M verify/catch-up steps).
//
// Layout of rows [16g, 16g + 16) (row group g; the last group is padded with zero rows),
// block pair p (blocks 2p and 2p + 1 of 32 columns; an odd last block is padded with a
// zero block), 1088 bytes = 17 cache lines:
//   byte h*512 + i*64 + r*4 + j  = q[16g + r][32(2p + h) + 4i + j] + 128  (as uint8)
//                                  h in {0, 1}, i < 8, r < 16, j < 4
//   byte 1024 + h*32 + 2r        = fp16 scale d of row 16g + r, block 2p + h
// Groups follow each other (group g at g * q8_rows16_group_bytes(cols)).
//
// The +128 makes the weights the unsigned operand of vpdpbusd; the activations (signed
// Q8_0 blocks, QActPair as for row-major Q8_0) are the signed one, and the 128 * sum(x_q)
// that the offset adds is removed by starting each block's int32 sum at -128 * sum(x_q).
// Results equal the row-major Q8_0 kernels' up to float summation order.
#pragma once

#include <cstdint>

#include "kernels/ops.h"

namespace tessera::kernels {

constexpr int64_t kQ8Rows16 = 16;           // rows per group
constexpr int64_t kQ8Rows16PairBytes = 1088;  // one block pair of one group

inline int64_t q8_rows16_groups(int64_t rows) { return (rows + kQ8Rows16 - 1) / kQ8Rows16; }
inline int64_t q8_rows16_pairs(int64_t cols) { return (cols / 32 + 1) / 2; }
inline int64_t q8_rows16_group_bytes(int64_t cols) { return q8_rows16_pairs(cols) * kQ8Rows16PairBytes; }
inline int64_t q8_rows16_bytes(int64_t rows, int64_t cols) {
  return q8_rows16_groups(rows) * q8_rows16_group_bytes(cols);
}

// True when matmul has a fast kernel for the layout on this CPU (AVX-512 with VNNI) and
// TESSERA_NO_Q8_PACK is not set (A/B measurements: the int8 copy then stays row-major).
// Elsewhere matmul still computes packed matrices correctly, through the reference.
bool q8_rows16_available();

// Repacks a row-major Q8_0 matrix (rows x cols, cols % 32 == 0, rows src_stride bytes
// apart; 0 = 34 * cols / 32) into dst (q8_rows16_bytes(rows, cols) bytes) and returns
// the WeightMatrix that describes dst.
WeightMatrix pack_q8_rows16(const void* src, int64_t src_stride, int64_t rows, int64_t cols, void* dst);

// The WeightMatrix of rows x cols Q8Rows16 bytes at data (already packed).
WeightMatrix q8_rows16_view(const void* data, int64_t rows, int64_t cols);

// Row r of a packed matrix back as row-major Q8_0 blocks (cols / 32 of them): the exact
// inverse of the packing (tests, the reference path).
void unpack_q8_rows16_row(const WeightMatrix& w, int64_t r, void* out_blocks);

}  // namespace tessera::kernels
