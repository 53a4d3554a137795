#include "checkpoint/ggml_types.h"

#include <array>

#include <glog/logging.h>

namespace tessera::checkpoint {

namespace {

// Ids 4 and 5 (Q4_2, Q4_3) were removed before GGUF existed. 31..33 (Q4_0_4_4,
// Q4_0_4_8, Q4_0_8_8) and 36..38 (IQ4_NL_4_4, ...) were repacked Q4_0 / IQ4_NL layouts
// that later ggml versions dropped; files from that era still exist, so they are
// listed with their Q4_0-sized blocks. Sizes: block_q2_K {scales[16], qs[64], d, dmin}
// = 84 bytes per 256 elements, and so on (ggml-common.h).
constexpr std::array<GgmlType, 38> kTypes = {{
    {0, "F32", 1, 4, DType::kF32},
    {1, "F16", 1, 2, DType::kF16},
    {2, "Q4_0", 32, 18, DType::kQ4_0},
    {3, "Q4_1", 32, 20, DType::kQ4_1},
    {6, "Q5_0", 32, 22, std::nullopt},
    {7, "Q5_1", 32, 24, std::nullopt},
    {8, "Q8_0", 32, 34, DType::kQ8_0},
    {9, "Q8_1", 32, 36, std::nullopt},
    {10, "Q2_K", 256, 84, std::nullopt},
    {11, "Q3_K", 256, 110, std::nullopt},
    {12, "Q4_K", 256, 144, std::nullopt},
    {13, "Q5_K", 256, 176, std::nullopt},
    {14, "Q6_K", 256, 210, std::nullopt},
    {15, "Q8_K", 256, 292, std::nullopt},
    {16, "IQ2_XXS", 256, 66, std::nullopt},
    {17, "IQ2_XS", 256, 74, std::nullopt},
    {18, "IQ3_XXS", 256, 98, std::nullopt},
    {19, "IQ1_S", 256, 50, std::nullopt},
    {20, "IQ4_NL", 32, 18, std::nullopt},
    {21, "IQ3_S", 256, 110, std::nullopt},
    {22, "IQ2_S", 256, 82, std::nullopt},
    {23, "IQ4_XS", 256, 136, std::nullopt},
    {24, "I8", 1, 1, std::nullopt},
    {25, "I16", 1, 2, std::nullopt},
    {26, "I32", 1, 4, DType::kI32},
    {27, "I64", 1, 8, std::nullopt},
    {28, "F64", 1, 8, std::nullopt},
    {29, "IQ1_M", 256, 56, std::nullopt},
    {30, "BF16", 1, 2, DType::kBF16},
    {31, "Q4_0_4_4", 32, 18, std::nullopt},
    {32, "Q4_0_4_8", 32, 18, std::nullopt},
    {33, "Q4_0_8_8", 32, 18, std::nullopt},
    {34, "TQ1_0", 256, 54, std::nullopt},
    {35, "TQ2_0", 256, 66, std::nullopt},
    {36, "IQ4_NL_4_4", 32, 18, std::nullopt},
    {37, "IQ4_NL_4_8", 32, 18, std::nullopt},
    {38, "IQ4_NL_8_8", 32, 18, std::nullopt},
    {39, "MXFP4", 32, 17, std::nullopt},
}};

}  // namespace

const GgmlType* ggml_type(uint32_t id) {
  for (const GgmlType& t : kTypes) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

uint32_t ggml_type_id(DType t) {
  switch (t) {
    case DType::kF32: return 0;
    case DType::kF16: return 1;
    case DType::kQ4_0: return 2;
    case DType::kQ4_1: return 3;
    case DType::kQ8_0: return 8;
    case DType::kI32: return 26;
    case DType::kBF16: return 30;
  }
  LOG(FATAL) << "ggml_type_id: unknown DType " << static_cast<int>(t);
  return 0;
}

}  // namespace tessera::checkpoint
