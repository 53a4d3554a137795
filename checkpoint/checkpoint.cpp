#include "checkpoint/checkpoint.h"

#include <set>
#include <tuple>

#include <glog/logging.h>

#include "common/error.h"

namespace tessera::checkpoint {

Checkpoint::~Checkpoint() = default;

std::vector<std::string> Checkpoint::files() const {
  std::vector<std::string> out;
  out.reserve(sources_.size());
  for (const Source& s : sources_) out.push_back(s.name);
  return out;
}

uint32_t Checkpoint::add_file(std::unique_ptr<MappedFile> file) {
  Source s;
  s.name = file->path();
  s.data = file->data();
  s.size = file->size();
  s.map = std::move(file);
  sources_.push_back(std::move(s));
  return static_cast<uint32_t>(sources_.size() - 1);
}

uint32_t Checkpoint::add_buffer(std::span<const uint8_t> bytes, std::string name) {
  Source s;
  s.name = std::move(name);
  s.data = bytes.data();
  s.size = bytes.size();
  sources_.push_back(std::move(s));
  return static_cast<uint32_t>(sources_.size() - 1);
}

std::span<const uint8_t> Checkpoint::file_bytes(uint32_t index) const {
  CHECK_LT(index, sources_.size());
  return {sources_[index].data, sources_[index].size};
}

const std::string& Checkpoint::file_name(uint32_t index) const {
  CHECK_LT(index, sources_.size());
  return sources_[index].name;
}

void Checkpoint::add_tensor(TensorInfo info) {
  CHECK_LT(info.file_index, sources_.size());
  CHECK_LE(info.offset, sources_[info.file_index].size);
  CHECK_LE(info.size, sources_[info.file_index].size - info.offset);
  auto it = by_name_.find(std::string_view(info.name));
  if (it != by_name_.end()) {
    const TensorInfo& prev = tensors_[it->second];
    TESSERA_FAIL(ErrorKind::kInvalidInput, info.file, ": duplicate tensor name '", info.name,
                 "' (data at byte offset ", info.offset, "; first defined in ", prev.file,
                 " at byte offset ", prev.offset, ")");
  }
  by_name_.emplace(info.name, tensors_.size());
  tensors_.push_back(std::move(info));
}

const TensorInfo* Checkpoint::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& Checkpoint::info(std::string_view name) const {
  const TensorInfo* t = find(name);
  TESSERA_REQUIRE(t != nullptr, ErrorKind::kNotFound, path_, ": tensor '", name,
                  "' not found (the checkpoint has ", tensors_.size(), " tensors)");
  return *t;
}

const uint8_t* Checkpoint::pointer(const TensorInfo& t, uint64_t offset_in_tensor) const {
  return sources_[t.file_index].data + t.offset + offset_in_tensor;
}

TensorBytes Checkpoint::data(std::string_view name) const {
  const TensorInfo& t = info(name);
  touch(t.size);
  return {pointer(t, 0), t.offset, t.size};
}

RowSlice Checkpoint::rows(std::string_view name, int64_t r0, int64_t r1) const {
  const TensorInfo& t = info(name);
  TESSERA_REQUIRE(!t.shape.empty(), ErrorKind::kInvalidInput, t.file, ": tensor '", name,
                  "' is a scalar; it has no rows");
  const int64_t n_rows = t.shape[0];
  TESSERA_REQUIRE(0 <= r0 && r0 <= r1 && r1 <= n_rows, ErrorKind::kInvalidInput, t.file,
                  ": tensor '", name, "': row range [", r0, ", ", r1, ") is outside [0, ", n_rows,
                  ")");
  int64_t inner = 1;
  for (size_t i = 1; i < t.shape.size(); ++i) inner *= t.shape[i];
  TESSERA_REQUIRE(inner % t.block_elems == 0, ErrorKind::kUnsupported, t.file, ": tensor '", name,
                  "': a row of ", inner, " elements is not a whole number of ", t.type_name,
                  " blocks (", t.block_elems, " elements)");
  RowSlice s;
  s.row_bytes = static_cast<uint64_t>(inner / t.block_elems * t.block_bytes);
  s.row0 = r0;
  s.row1 = r1;
  s.size = static_cast<uint64_t>(r1 - r0) * s.row_bytes;
  s.file_offset = t.offset + static_cast<uint64_t>(r0) * s.row_bytes;
  s.data = pointer(t, static_cast<uint64_t>(r0) * s.row_bytes);
  CHECK_LE(s.file_offset + s.size, t.offset + t.size);
  touch(s.size);
  return s;
}

ColumnSlice Checkpoint::columns(std::string_view name, int64_t c0, int64_t c1) const {
  const TensorInfo& t = info(name);
  TESSERA_REQUIRE(!t.shape.empty(), ErrorKind::kInvalidInput, t.file, ": tensor '", name,
                  "' is a scalar; it has no columns");
  const int64_t n_cols = t.shape.back();
  TESSERA_REQUIRE(0 <= c0 && c0 <= c1 && c1 <= n_cols, ErrorKind::kInvalidInput, t.file,
                  ": tensor '", name, "': column range [", c0, ", ", c1, ") is outside [0, ",
                  n_cols, ")");
  TESSERA_REQUIRE(c0 % t.block_elems == 0 && c1 % t.block_elems == 0 &&
                      n_cols % t.block_elems == 0,
                  ErrorKind::kInvalidInput, t.file, ": tensor '", name, "': column range [", c0,
                  ", ", c1, ") does not fall on ", t.type_name, " block boundaries (",
                  t.block_elems, " elements)");
  ColumnSlice s;
  s.rows = n_cols == 0 ? 0 : t.elements() / n_cols;
  s.col0 = c0;
  s.col1 = c1;
  s.row_stride = static_cast<uint64_t>(n_cols / t.block_elems * t.block_bytes);
  s.row_bytes = static_cast<uint64_t>((c1 - c0) / t.block_elems * t.block_bytes);
  const uint64_t skip = static_cast<uint64_t>(c0 / t.block_elems * t.block_bytes);
  s.file_offset = t.offset + skip;
  s.data = pointer(t, skip);
  touch(s.size());
  return s;
}

// Totals count each stored byte range once: a tied classifier (llama2.c
// output.weight) is a second name for token_embd.weight's bytes.
template <typename F>
static void for_each_distinct(const std::vector<TensorInfo>& tensors, F f) {
  std::set<std::tuple<uint32_t, uint64_t, uint64_t>> seen;
  for (const TensorInfo& t : tensors) {
    if (seen.emplace(t.file_index, t.offset, t.size).second) f(t);
  }
}

int64_t Checkpoint::total_elements() const {
  int64_t n = 0;
  for_each_distinct(tensors_, [&](const TensorInfo& t) { n += t.elements(); });
  return n;
}

uint64_t Checkpoint::total_bytes() const {
  uint64_t n = 0;
  for_each_distinct(tensors_, [&](const TensorInfo& t) { n += t.size; });
  return n;
}

}  // namespace tessera::checkpoint
