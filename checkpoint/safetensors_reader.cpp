#include "checkpoint/safetensors_reader.h"

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <set>

#include "checkpoint/byte_reader.h"
#include "common/error.h"

namespace tessera::checkpoint {

namespace {

struct StDtype {
  std::string_view name;
  int64_t bytes;
  std::optional<DType> dtype;
};

constexpr std::array<StDtype, 15> kDtypes = {{
    {"F32", 4, DType::kF32},
    {"F16", 2, DType::kF16},
    {"BF16", 2, DType::kBF16},
    {"I32", 4, DType::kI32},
    {"F64", 8, std::nullopt},
    {"I64", 8, std::nullopt},
    {"I16", 2, std::nullopt},
    {"I8", 1, std::nullopt},
    {"U8", 1, std::nullopt},
    {"U16", 2, std::nullopt},
    {"U32", 4, std::nullopt},
    {"U64", 8, std::nullopt},
    {"BOOL", 1, std::nullopt},
    {"F8_E4M3", 1, std::nullopt},
    {"F8_E5M2", 1, std::nullopt},
}};

const StDtype* find_dtype(std::string_view name) {
  for (const StDtype& d : kDtypes) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

std::string dir_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

}  // namespace

SafetensorsReader::SafetensorsReader(const std::string& path) : Checkpoint(path) {
  const bool is_index = path.size() >= 11 && path.compare(path.size() - 11, 11, ".index.json") == 0;
  if (is_index) {
    open_index(path);
  } else {
    for (TensorInfo& t : parse_file(add_file(std::make_unique<MappedFile>(path)))) {
      add_tensor(std::move(t));
    }
  }
  read_config(dir_of(path));
}

SafetensorsReader::SafetensorsReader(std::span<const uint8_t> bytes, std::string name)
    : Checkpoint(name) {
  for (TensorInfo& t : parse_file(add_buffer(bytes, std::move(name)))) add_tensor(std::move(t));
}

std::string SafetensorsReader::format_version() const {
  if (!sharded_) return "single file";
  return detail::concat("sharded, ", files().size(), " files");
}

std::string SafetensorsReader::architecture() const {
  if (!has_config_) return "";
  if (const Json* m = config_.find("model_type"); m != nullptr && m->is_string()) {
    return m->as_string();
  }
  if (const Json* a = config_.find("architectures");
      a != nullptr && a->is_array() && !a->as_array().empty() && a->as_array()[0].is_string()) {
    return a->as_array()[0].as_string();
  }
  return "";
}

void SafetensorsReader::add_metadata(std::string key, std::string value) {
  for (const auto& kv : metadata_) {
    if (kv.first == key) return;
  }
  metadata_.emplace_back(std::move(key), std::move(value));
}

std::vector<TensorInfo> SafetensorsReader::parse_file(uint32_t file_index) {
  const std::string& file = file_name(file_index);
  ByteReader in(file_bytes(file_index), file);
  const uint64_t n = in.read<uint64_t>("the safetensors header length");
  TESSERA_REQUIRE(n <= in.remaining(), ErrorKind::kInvalidInput, file,
                  ": safetensors header length ", n, " (byte offset 0) exceeds the ",
                  in.remaining(), " bytes after it (truncated file, or not safetensors)");
  TESSERA_REQUIRE(n <= kSafetensorsMaxHeader, ErrorKind::kInvalidInput, file,
                  ": safetensors header length ", n, " (byte offset 0) exceeds the ",
                  kSafetensorsMaxHeader, "-byte limit");
  const std::string_view text = in.read_bytes(n, "the safetensors header");
  const uint64_t data_start = 8 + n;
  const uint64_t data_size = in.size() - data_start;

  // Json::parse reports offsets within the header text, which starts at byte 8.
  const Json header =
      Json::parse(text, file + " (safetensors JSON header, which starts at byte offset 8)");
  TESSERA_REQUIRE(header.is_object(), ErrorKind::kInvalidInput, file,
                  ": safetensors header (byte offset 8) is not a JSON object");

  std::vector<TensorInfo> infos;
  std::set<std::string_view> names;
  for (const auto& member : header.as_object()) {
    // Plain references, not structured bindings: clang 14 cannot capture bindings.
    const std::string& name = member.first;
    const Json& entry = member.second;
    if (name == "__metadata__") {
      TESSERA_REQUIRE(entry.is_object(), ErrorKind::kInvalidInput, file,
                      ": __metadata__ is not a JSON object");
      for (const auto& [k, v] : entry.as_object()) {
        add_metadata(k, v.is_string() ? v.as_string() : v.dump());
      }
      continue;
    }
    // Json objects keep duplicate keys in document order; a duplicate tensor name is
    // an error, not "last one wins".
    TESSERA_REQUIRE(names.insert(name).second, ErrorKind::kInvalidInput, file,
                    ": duplicate tensor name '", name, "' in the safetensors header");
    auto field = [&](const char* key) -> const Json& {
      TESSERA_REQUIRE(entry.is_object(), ErrorKind::kInvalidInput, file, ": tensor '", name,
                      "': header entry is not a JSON object");
      const Json* f = entry.find(key);
      TESSERA_REQUIRE(f != nullptr, ErrorKind::kInvalidInput, file, ": tensor '", name,
                      "': header entry has no \"", key, "\"");
      return *f;
    };
    const Json& dtype_j = field("dtype");
    const Json& shape_j = field("shape");
    const Json& offs_j = field("data_offsets");
    TESSERA_REQUIRE(dtype_j.is_string(), ErrorKind::kInvalidInput, file, ": tensor '", name,
                    "': \"dtype\" is not a string");
    const StDtype* dt = find_dtype(dtype_j.as_string());
    TESSERA_REQUIRE(dt != nullptr, ErrorKind::kUnsupported, file, ": tensor '", name,
                    "': unknown dtype '", dtype_j.as_string(), "'");
    TESSERA_REQUIRE(shape_j.is_array(), ErrorKind::kInvalidInput, file, ": tensor '", name,
                    "': \"shape\" is not an array");
    const Json::Array& dims = shape_j.as_array();
    TESSERA_REQUIRE(dims.size() <= kSafetensorsMaxDims, ErrorKind::kInvalidInput, file,
                    ": tensor '", name, "': ", dims.size(), " dimensions (at most ",
                    kSafetensorsMaxDims, " supported)");
    TensorInfo t;
    t.name = name;
    int64_t elems = 1;
    for (size_t d = 0; d < dims.size(); ++d) {
      TESSERA_REQUIRE(dims[d].is_integer() && dims[d].as_int() >= 0, ErrorKind::kInvalidInput,
                      file, ": tensor '", name, "': shape[", d, "] is not a non-negative integer");
      const int64_t v = dims[d].as_int();
      TESSERA_REQUIRE(checked_mul(elems, v, &elems), ErrorKind::kInvalidInput, file,
                      ": tensor '", name, "': the element count of shape ", shape_j.dump(),
                      " overflows");
      t.shape.push_back(v);
    }
    uint64_t bytes = 0;
    TESSERA_REQUIRE(checked_mul(static_cast<uint64_t>(elems), static_cast<uint64_t>(dt->bytes),
                                &bytes),
                    ErrorKind::kInvalidInput, file, ": tensor '", name, "': byte size of shape ",
                    shape_j.dump(), " overflows");
    TESSERA_REQUIRE(offs_j.is_array() && offs_j.as_array().size() == 2 &&
                        offs_j.as_array()[0].is_integer() && offs_j.as_array()[1].is_integer() &&
                        offs_j.as_array()[0].as_int() >= 0 && offs_j.as_array()[1].as_int() >= 0,
                    ErrorKind::kInvalidInput, file, ": tensor '", name,
                    "': \"data_offsets\" is not [begin, end] with non-negative integers");
    const uint64_t begin = static_cast<uint64_t>(offs_j.as_array()[0].as_int());
    const uint64_t end = static_cast<uint64_t>(offs_j.as_array()[1].as_int());
    TESSERA_REQUIRE(begin <= end, ErrorKind::kInvalidInput, file, ": tensor '", name,
                    "': data_offsets [", begin, ", ", end, ") are out of order");
    TESSERA_REQUIRE(end <= data_size, ErrorKind::kInvalidInput, file, ": tensor '", name,
                    "': data [", data_start + begin, ", ", data_start + end,
                    ") exceeds the file size ", in.size());
    TESSERA_REQUIRE(end - begin == bytes, ErrorKind::kInvalidInput, file, ": tensor '", name,
                    "': data_offsets [", begin, ", ", end, ") hold ", end - begin,
                    " bytes but ", dt->name, " ", shape_j.dump(), " needs ", bytes);
    t.type_name = std::string(dt->name);
    t.dtype_opt = dt->dtype;
    t.block_elems = 1;
    t.block_bytes = dt->bytes;
    t.file_index = file_index;
    t.file = file;
    t.offset = data_start + begin;
    t.size = bytes;
    TESSERA_REQUIRE(t.offset % static_cast<uint64_t>(dt->bytes) == 0, ErrorKind::kInvalidInput,
                    file, ": tensor '", name, "': data at byte offset ", t.offset,
                    " is misaligned for ", dt->name, " (needs a multiple of ", dt->bytes, ")");
    infos.push_back(std::move(t));
  }

  std::stable_sort(infos.begin(), infos.end(),
                   [](const TensorInfo& a, const TensorInfo& b) { return a.offset < b.offset; });
  for (size_t k = 1; k < infos.size(); ++k) {
    const TensorInfo& a = infos[k - 1];
    const TensorInfo& b = infos[k];
    TESSERA_REQUIRE(a.offset + a.size <= b.offset || a.size == 0 || b.size == 0,
                    ErrorKind::kInvalidInput, file, ": tensors '", a.name, "' [", a.offset, ", ",
                    a.offset + a.size, ") and '", b.name, "' [", b.offset, ", ",
                    b.offset + b.size, ") overlap");
  }
  return infos;
}

void SafetensorsReader::open_index(const std::string& index_path) {
  sharded_ = true;
  const Json index = Json::parse(read_text_file(index_path), index_path);
  TESSERA_REQUIRE(index.is_object(), ErrorKind::kInvalidInput, index_path,
                  ": not a JSON object");
  const Json* map = index.find("weight_map");
  TESSERA_REQUIRE(map != nullptr && map->is_object(), ErrorKind::kInvalidInput, index_path,
                  ": no \"weight_map\" object");
  if (const Json* meta = index.find("metadata"); meta != nullptr && meta->is_object()) {
    for (const auto& [k, v] : meta->as_object()) {
      add_metadata(k, v.is_string() ? v.as_string() : v.dump());
    }
  }
  const std::string dir = dir_of(index_path);
  std::vector<std::string> shards;                 // first-appearance order
  std::map<std::string, std::vector<std::string>> wanted;  // shard -> tensors
  for (const auto& [tensor, shard_j] : map->as_object()) {
    TESSERA_REQUIRE(shard_j.is_string(), ErrorKind::kInvalidInput, index_path,
                    ": weight_map entry for tensor '", tensor, "' is not a file name");
    const std::string& shard = shard_j.as_string();
    TESSERA_REQUIRE(!shard.empty() && shard[0] != '/' && shard.find("..") == std::string::npos,
                    ErrorKind::kInvalidInput, index_path, ": weight_map entry for tensor '",
                    tensor, "' names '", shard, "', which is not a file next to the index");
    auto [it, fresh] = wanted.try_emplace(shard);
    if (fresh) shards.push_back(shard);
    it->second.push_back(tensor);
  }
  for (const std::string& shard : shards) {
    const std::string path = dir + "/" + shard;
    TESSERA_REQUIRE(file_exists(path), ErrorKind::kNotFound, index_path, ": shard '", shard,
                    "' (named for tensor '", wanted[shard].front(), "') does not exist: ",
                    path);
    std::vector<TensorInfo> infos = parse_file(add_file(std::make_unique<MappedFile>(path)));
    std::set<std::string_view> present;
    for (const TensorInfo& t : infos) present.insert(t.name);
    for (const std::string& tensor : wanted[shard]) {
      TESSERA_REQUIRE(present.count(tensor) != 0, ErrorKind::kNotFound, index_path,
                      ": tensor '", tensor, "' is assigned to shard ", path,
                      " but that file does not contain it");
    }
    for (TensorInfo& t : infos) add_tensor(std::move(t));
  }
}

void SafetensorsReader::read_config(const std::string& dir) {
  const std::string path = dir + "/config.json";
  if (!file_exists(path)) return;
  config_ = Json::parse(read_text_file(path), path);
  has_config_ = true;
}

}  // namespace tessera::checkpoint
