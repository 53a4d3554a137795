#include "checkpoint/gguf_reader.h"

#include <algorithm>
#include <bit>

#include "checkpoint/byte_reader.h"
#include "checkpoint/ggml_types.h"
#include "common/error.h"

namespace tessera::checkpoint {

GgufReader::GgufReader(const std::string& path) : Checkpoint(path), metadata_(path) {
  parse(add_file(std::make_unique<MappedFile>(path)));
}

GgufReader::GgufReader(std::span<const uint8_t> bytes, std::string name)
    : Checkpoint(name), metadata_(name) {
  parse(add_buffer(bytes, std::move(name)));
}

std::string GgufReader::architecture() const {
  const GgufValue* v = metadata_.find("general.architecture");
  return v != nullptr && v->type == GgufType::kString ? std::string(v->str) : std::string();
}

void GgufReader::parse(uint32_t file_index) {
  const std::string& file = file_name(file_index);
  ByteReader in(file_bytes(file_index), file);

  const uint32_t magic = in.read<uint32_t>("the GGUF magic");
  TESSERA_REQUIRE(magic == kGgufMagic, ErrorKind::kInvalidInput, file,
                  ": not a GGUF file: bytes 0..3 are 0x", std::hex, magic, std::dec,
                  " (expected \"GGUF\")");
  version_ = in.read<uint32_t>("the GGUF version");
  TESSERA_REQUIRE(version_ != 1, ErrorKind::kUnsupported, file,
                  ": GGUF version 1 (byte offset 4) is not supported: it uses 32-bit counts "
                  "and was replaced in 2023; re-convert the model with a current llama.cpp");
  TESSERA_REQUIRE(version_ == 2 || version_ == 3, ErrorKind::kUnsupported, file,
                  ": unsupported GGUF version ", version_,
                  " at byte offset 4 (supported: 2, 3; a big-endian GGUF file also reads "
                  "as a huge version and is not supported)");
  const uint64_t n_tensors = in.read<uint64_t>("the tensor count");
  const uint64_t n_kv = in.read<uint64_t>("the metadata count");

  metadata_.parse(in, n_kv);

  if (const GgufValue* a = metadata_.find("general.alignment")) {
    const uint64_t align = metadata_.get_u32("general.alignment");
    TESSERA_REQUIRE(align != 0 && std::has_single_bit(align), ErrorKind::kInvalidInput, file,
                    ": general.alignment at byte offset ", a->offset, " is ", align,
                    "; it must be a power of two");
    alignment_ = align;
  }

  // Each tensor info takes at least 24 bytes (u64 name length, u32 n_dims, u32 type,
  // u64 offset): bound the count by the bytes left before reserving anything.
  TESSERA_REQUIRE(n_tensors <= in.remaining() / 24, ErrorKind::kInvalidInput, file,
                  ": tensor count ", n_tensors, " (byte offset 8) cannot fit in the ",
                  in.remaining(), " bytes left after the metadata (byte offset ", in.offset(),
                  ")");
  std::vector<TensorInfo> infos;
  std::vector<uint64_t> header_offsets;
  infos.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo t;
    const uint64_t at = in.offset();
    header_offsets.push_back(at);
    const uint64_t len = in.read<uint64_t>("a tensor name length");
    TESSERA_REQUIRE(len <= in.remaining(), ErrorKind::kInvalidInput, file, ": tensor #", k,
                    " at byte offset ", at, ": name length ", len, " exceeds the ",
                    in.remaining(), " bytes left in the file");
    t.name = std::string(in.read_bytes(len, "a tensor name"));
    const uint64_t dims_at = in.offset();
    const uint32_t n_dims = in.read<uint32_t>("a tensor's n_dims");
    TESSERA_REQUIRE(n_dims <= kGgufMaxDims, ErrorKind::kInvalidInput, file, ": tensor '", t.name,
                    "': n_dims ", n_dims, " at byte offset ", dims_at, " exceeds ",
                    kGgufMaxDims);
    std::vector<int64_t> ne(n_dims);
    int64_t n_elems = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim_at = in.offset();
      ne[d] = in.read<int64_t>("a tensor dimension");
      TESSERA_REQUIRE(ne[d] >= 0, ErrorKind::kInvalidInput, file, ": tensor '", t.name,
                      "': dimension ne[", d, "] = ", ne[d], " at byte offset ", dim_at,
                      " is negative");
      TESSERA_REQUIRE(checked_mul(n_elems, ne[d], &n_elems), ErrorKind::kInvalidInput, file,
                      ": tensor '", t.name, "': the element count overflows at ne[", d,
                      "] (byte offset ", dim_at, ")");
    }
    t.shape.assign(ne.rbegin(), ne.rend());  // outermost first
    const uint64_t type_at = in.offset();
    const uint32_t type_id = in.read<uint32_t>("a tensor type");
    const GgmlType* type = ggml_type(type_id);
    TESSERA_REQUIRE(type != nullptr, ErrorKind::kUnsupported, file, ": tensor '", t.name,
                    "': unknown ggml type id ", type_id, " at byte offset ", type_at);
    t.type_name = std::string(type->name);
    t.dtype_opt = type->dtype;
    t.format_type = static_cast<int32_t>(type_id);
    t.block_elems = type->block_elems;
    t.block_bytes = type->block_bytes;
    const int64_t ne0 = n_dims > 0 ? ne[0] : 1;
    TESSERA_REQUIRE(ne0 % type->block_elems == 0, ErrorKind::kInvalidInput, file, ": tensor '",
                    t.name, "': ne[0] = ", ne0, " is not a multiple of the ", type->name,
                    " block size ", type->block_elems, " (byte offset ", dims_at, ")");
    uint64_t blocks = static_cast<uint64_t>(n_elems / type->block_elems);
    TESSERA_REQUIRE(checked_mul(blocks, static_cast<uint64_t>(type->block_bytes), &t.size),
                    ErrorKind::kInvalidInput, file, ": tensor '", t.name,
                    "': byte size overflows (byte offset ", dims_at, ")");
    const uint64_t off_at = in.offset();
    t.offset = in.read<uint64_t>("a tensor data offset");
    TESSERA_REQUIRE(t.offset % alignment_ == 0, ErrorKind::kInvalidInput, file, ": tensor '",
                    t.name, "': data offset ", t.offset, " (field at byte offset ", off_at,
                    ") is not a multiple of the alignment ", alignment_);
    t.file_index = file_index;
    t.file = file;
    infos.push_back(std::move(t));
  }

  const uint64_t header_end = in.offset();
  data_offset_ = (header_end + alignment_ - 1) / alignment_ * alignment_;
  const uint64_t file_size = in.size();
  for (size_t k = 0; k < infos.size(); ++k) {
    TensorInfo& t = infos[k];
    const uint64_t rel = t.offset;
    const bool in_file = data_offset_ <= file_size && rel <= file_size - data_offset_ &&
                         t.size <= file_size - data_offset_ - rel;
    TESSERA_REQUIRE(in_file, ErrorKind::kInvalidInput, file, ": tensor '", t.name, "' (",
                    t.type_name, " ", t.shape_string(), ", info at byte offset ",
                    header_offsets[k], "): data [", data_offset_, " + ", rel, ", +", t.size,
                    " bytes) exceeds the file size ", file_size);
    t.offset = data_offset_ + rel;
  }

  // Tensors must not overlap (a corrupt offset would otherwise alias two weights).
  std::vector<size_t> order(infos.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return infos[a].offset < infos[b].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const TensorInfo& a = infos[order[k - 1]];
    const TensorInfo& b = infos[order[k]];
    TESSERA_REQUIRE(a.offset + a.size <= b.offset || a.size == 0 || b.size == 0,
                    ErrorKind::kInvalidInput, file, ": tensors '", a.name, "' [", a.offset, ", ",
                    a.offset + a.size, ") and '", b.name, "' [", b.offset, ", ",
                    b.offset + b.size, ") overlap");
  }

  for (TensorInfo& t : infos) add_tensor(std::move(t));
}

}  // namespace tessera::checkpoint
