// A read-only memory map of a whole file (RAII).
//
// Checkpoints are mapped, never read whole: a tensor is a view into the map, and a
// rank that owns a slice touches only those pages (bytes_touched() is counted by the
// readers that hand out slices, not here).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tessera {

class MappedFile {
 public:
  // Throws tessera::Error naming the path when the file cannot be opened or mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Reads a whole (small) text file; throws naming the path on failure.
std::string read_text_file(const std::string& path);

bool file_exists(const std::string& path);

}  // namespace tessera
