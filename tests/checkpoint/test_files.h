// Builders for checkpoint test inputs (valid and corrupt) and small test utilities.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "checkpoint/llama2c_reader.h"

namespace tessera::checkpoint::testing {

// The message of the tessera::Error `f` throws, or "<no error>" / "<other exception: ...>".
std::string error_of(const std::function<void()>& f);

// A fresh directory under /tmp, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  std::string write(const std::string& name, const std::vector<uint8_t>& bytes) const;
  std::string write(const std::string& name, const std::string& text) const;

 private:
  std::string path_;
};

// llama2.c legacy (version 0) or version 1 file; weights are filled with
// value(index) for float index 0, 1, 2, ... in file order.
std::vector<uint8_t> make_llama2c(const Llama2cConfig& c, bool tied, int version = 0);

// One safetensors tensor to write; data is filled with bytes (i * 7 + 1) & 0xff.
struct StTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  int64_t elem_bytes;
};
// A safetensors file: header (tensors packed in order, optional __metadata__), data.
std::vector<uint8_t> make_safetensors(const std::vector<StTensor>& tensors,
                                      const std::string& metadata_json = "");
// A safetensors file from a literal header and `data_bytes` zero bytes of data.
std::vector<uint8_t> make_safetensors_raw(const std::string& header, size_t data_bytes);

template <typename T>
void patch(std::vector<uint8_t>& bytes, size_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

}  // namespace tessera::checkpoint::testing
