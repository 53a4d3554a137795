#include "checkpoint/tensor_info.h"

#include "common/error.h"

namespace tessera::checkpoint {

int64_t TensorInfo::elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // readers reject shapes whose product overflows
  return n;
}

DType TensorInfo::dtype() const {
  TESSERA_REQUIRE(dtype_opt.has_value(), ErrorKind::kUnsupported, file, ": tensor '", name,
                  "' has element type ", type_name,
                  ", which tessera cannot compute with (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)");
  return *dtype_opt;
}

std::string TensorInfo::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace tessera::checkpoint
