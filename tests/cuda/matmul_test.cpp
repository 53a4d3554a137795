// Device matmul (kernels/cuda/gemm.h) against ref::matmul, typed over the weight
// dtypes the device takes: cuBLAS GEMM, the own half-precision GEMV and the Q8_0 path.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "common/error.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/stream.h"
#include "kernels/reference.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/kernels/test_util.h"

namespace tessera::kernels::cuda::test {
namespace {

template <DType T>
struct Dt {
  static constexpr DType value = T;
};

template <typename D>
class CudaMatmul : public ::testing::Test {};

using WeightTypes = ::testing::Types<Dt<DType::kF32>, Dt<DType::kF16>, Dt<DType::kBF16>, Dt<DType::kQ8_0>>;
struct DtName {
  template <typename D>
  static std::string GetName(int) {
    return std::string(dtype_name(D::value));
  }
};
TYPED_TEST_SUITE(CudaMatmul, WeightTypes, DtName);

struct Shape {
  int64_t rows, cols, n;
  int64_t pad_bytes;  // extra bytes between weight rows (a strided view)
  bool gemv;          // allow the own GEMV for n == 1
};

// Runs one shape and checks every output against the reference bound.
void check_matmul(DType t, const Shape& sh, uint32_t seed) {
  std::mt19937 rng(seed);
  const int64_t row_bytes = dtype_row_bytes(t, sh.cols);
  const int64_t stride = row_bytes + sh.pad_bytes;
  const std::vector<uint8_t> packed = kernels::test::make_weights(rng, t, sh.rows, sh.cols);
  std::vector<uint8_t> host(static_cast<size_t>(sh.rows * stride), 0);
  for (int64_t r = 0; r < sh.rows; ++r)
    std::copy_n(packed.begin() + r * row_bytes, row_bytes, host.begin() + r * stride);
  const std::vector<float> x = kernels::test::random_vec(rng, sh.n * sh.cols);

  WeightMatrix w;
  w.dtype = t;
  w.rows = sh.rows;
  w.cols = sh.cols;
  w.data = host.data();
  w.row_stride = stride;
  w.act_rounding = ActRounding::kWeightType;  // the device always rounds x for F16/BF16
  std::vector<float> want(static_cast<size_t>(sh.n * sh.rows));
  ref::matmul(w, x.data(), sh.n, want.data());

  // sum_k |w_k x_k| with the reference's rounding of x, for the bound.
  std::vector<float> wrow(static_cast<size_t>(sh.cols));
  std::vector<double> bound(static_cast<size_t>(sh.n * sh.rows));
  for (int64_t r = 0; r < sh.rows; ++r) {
    ref::dequantize_row(t, host.data() + r * stride, wrow.data(), sh.cols);
    for (int64_t i = 0; i < sh.n; ++i) {
      double s = 0;
      for (int64_t k = 0; k < sh.cols; ++k)
        s += std::fabs(static_cast<double>(wrow[k]) * ref::round_act(t, x[i * sh.cols + k]));
      bound[i * sh.rows + r] = s;
    }
  }

  Stream stream;
  DevicePool pool;
  Gemm gemm(stream.get(), pool);
  gemm.set_use_gemv(sh.gemv);
  DeviceBuffer dw = to_device(host), dx = to_device(x);
  DeviceBuffer dy(want.size() * sizeof(float));
  gemm.matmul(DeviceMatrix{t, sh.rows, sh.cols, dw.get(), stride}, dx.as<float>(), sh.n, dy.as<float>());
  stream.synchronize();
  const std::vector<float> got = from_device<float>(dy, want.size());
  int bad = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    // Q8_0 also quantises x: a one-step difference in a rounded x is not allowed either
    // (both round the same f32 values the same way), so the bound is the same.
    const double tol = kMatmulRel * bound[i] + 1e-6;
    if (std::fabs(got[i] - want[i]) > tol && ++bad <= 5)
      ADD_FAILURE() << dtype_name(t) << " rows " << sh.rows << " cols " << sh.cols << " n " << sh.n << " gemv "
                    << sh.gemv << ": y[" << i << "] = " << got[i] << ", reference " << want[i] << " (tol " << tol
                    << ")";
  }
}

TYPED_TEST(CudaMatmul, MatchesReference) {
  TESSERA_SKIP_WITHOUT_CUDA();
  const DType t = TypeParam::value;
  const std::vector<Shape> shapes = {
      {67, 256, 1, 0, true},     // decode GEMV, rows not a multiple of the 8 rows per block
      {67, 256, 1, 0, false},    // the same through cuBLAS
      {130, 512, 7, 0, true},    // small prefill
      {64, 1024, 64, 0, true},   // prefill
      {257, 4096, 1, 64, true},  // wide decode row, strided weight view (row padding)
      {33, 96, 3, 32, true},
  };
  uint32_t seed = 1;
  for (const Shape& sh : shapes) check_matmul(t, sh, seed++);
  if (t != DType::kQ8_0) check_matmul(t, {19, 100, 1, 0, true}, seed++);  // cols % 8 != 0: no GEMV
}

TEST(CudaMatmul, RejectsQ4WithAClearError) {
  TESSERA_SKIP_WITHOUT_CUDA();
  Stream stream;
  DevicePool pool;
  Gemm gemm(stream.get(), pool);
  DeviceBuffer w(18 * 4), x(32 * 4), y(4 * 4);
  try {
    gemm.matmul(DeviceMatrix{DType::kQ4_0, 4, 32, w.get(), 18}, x.as<float>(), 1, y.as<float>());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("Q4_0"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tessera::kernels::cuda::test
