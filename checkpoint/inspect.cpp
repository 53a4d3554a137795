#include "checkpoint/inspect.h"

#include <algorithm>
#include <iomanip>
#include <sstream>

#include "checkpoint/gguf_reader.h"
#include "checkpoint/llama2c_reader.h"
#include "checkpoint/open.h"
#include "checkpoint/safetensors_reader.h"

namespace tessera::checkpoint {

namespace {

constexpr uint64_t kShowItems = 5;     // array items shown before "..."
constexpr size_t kMaxStringShown = 80;  // longer strings are cut

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < kMaxStringShown; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      std::ostringstream hex;
      hex << "\\x" << std::hex << std::setw(2) << std::setfill('0') << int(c);
      out += hex.str();
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMaxStringShown) out += "...";
  return out + "\"";
}

std::string format_value(const GgufMetadata& md, const GgufValue& v) {
  std::ostringstream os;
  switch (v.type) {
    case GgufType::kU8: case GgufType::kU16: case GgufType::kU32: case GgufType::kU64:
      os << v.u;
      break;
    case GgufType::kI8: case GgufType::kI16: case GgufType::kI32: case GgufType::kI64:
      os << v.i;
      break;
    case GgufType::kF32: case GgufType::kF64:
      os << std::setprecision(7) << v.f;
      break;
    case GgufType::kBool:
      os << (v.u ? "true" : "false");
      break;
    case GgufType::kString:
      os << quoted(v.str);
      break;
    case GgufType::kArray: {
      os << gguf_type_name(v.elem_type) << "[" << v.count << "] [";
      const std::vector<GgufValue> items = md.elements(v, kShowItems);
      for (size_t i = 0; i < items.size(); ++i) os << (i ? ", " : "") << format_value(md, items[i]);
      if (v.count > items.size()) os << ", ...";
      os << "]";
      break;
    }
  }
  return os.str();
}

std::string summarise_json(const Json& j) {
  if (j.is_array()) {
    std::string s = "array[" + std::to_string(j.as_array().size()) + "] [";
    for (size_t i = 0; i < j.as_array().size() && i < kShowItems; ++i) {
      s += (i ? ", " : "") + summarise_json(j.as_array()[i]);
    }
    return s + (j.as_array().size() > kShowItems ? ", ...]" : "]");
  }
  if (j.is_object()) return "object{" + std::to_string(j.as_object().size()) + " keys}";
  std::string s = j.dump();
  return s.size() > kMaxStringShown ? s.substr(0, kMaxStringShown) + "..." : s;
}

}  // namespace

void inspect_checkpoint(const Checkpoint& ckpt, std::ostream& out) {
  out << "path:         " << ckpt.path() << "\n";
  out << "format:       " << ckpt.format() << " (version " << ckpt.format_version() << ")\n";
  const std::vector<std::string> files = ckpt.files();
  if (files.size() > 1 || (files.size() == 1 && files[0] != ckpt.path())) {
    out << "files:        " << files.size() << "\n";
    for (const std::string& f : files) out << "  " << f << "\n";
  }
  const std::string arch = ckpt.architecture();
  out << "architecture: " << (arch.empty() ? "(not recorded)" : arch) << "\n";

  if (const auto* g = dynamic_cast<const GgufReader*>(&ckpt)) {
    out << "alignment:    " << g->alignment() << "\n";
    out << "data offset:  " << g->data_offset() << "\n";
    const GgufMetadata& md = g->metadata();
    out << "\nmetadata (" << md.size() << " keys):\n";
    for (const auto& [key, v] : md.entries()) {
      out << "  " << key << " (" << v.type_string() << ") = " << format_value(md, v) << "\n";
    }
  } else if (const auto* l = dynamic_cast<const Llama2cReader*>(&ckpt)) {
    const Llama2cConfig& c = l->config();
    out << "\nhyperparameters (header):\n"
        << "  dim = " << c.dim << "\n  hidden_dim = " << c.hidden_dim
        << "\n  n_layers = " << c.n_layers << "\n  n_heads = " << c.n_heads
        << "\n  n_kv_heads = " << c.n_kv_heads << "\n  vocab_size = " << c.vocab_size
        << "\n  seq_len = " << c.seq_len << "\n  head_size = " << c.head_size()
        << "\n  shared_classifier = " << (c.shared_classifier ? "true" : "false") << "\n";
  } else if (const auto* s = dynamic_cast<const SafetensorsReader*>(&ckpt)) {
    if (!s->metadata().empty()) {
      out << "\nmetadata (" << s->metadata().size() << " keys):\n";
      for (const auto& [k, v] : s->metadata()) out << "  " << k << " = " << quoted(v) << "\n";
    }
    if (const Json* cfg = s->config(); cfg != nullptr && cfg->is_object()) {
      out << "\nconfig.json (" << cfg->as_object().size() << " keys):\n";
      for (const auto& [k, v] : cfg->as_object()) out << "  " << k << " = " << summarise_json(v) << "\n";
    }
  }

  const std::vector<TensorInfo>& ts = ckpt.tensors();
  size_t name_w = 4;
  for (const TensorInfo& t : ts) name_w = std::max(name_w, t.name.size());
  out << "\ntensors (" << ts.size() << "):\n";
  out << "  " << std::left << std::setw(static_cast<int>(name_w)) << "name" << "  "
      << std::setw(8) << "dtype" << "  " << std::setw(22) << "shape" << "  " << std::right
      << std::setw(12) << "bytes" << "  " << std::setw(12) << "offset";
  if (files.size() > 1) out << "  file";
  out << "\n";
  for (const TensorInfo& t : ts) {
    out << "  " << std::left << std::setw(static_cast<int>(name_w)) << t.name << "  "
        << std::setw(8) << t.type_name << "  " << std::setw(22) << t.shape_string() << "  "
        << std::right << std::setw(12) << t.size << "  " << std::setw(12) << t.offset;
    if (files.size() > 1) out << "  " << t.file.substr(t.file.rfind('/') + 1);
    out << "\n";
  }
  out << std::left << "\ntotal: " << ts.size() << " tensors, " << ckpt.total_elements()
      << " parameters, " << ckpt.total_bytes() << " bytes";
  if (ckpt.total_elements() > 0) {
    out << std::fixed << std::setprecision(2) << " ("
        << 8.0 * static_cast<double>(ckpt.total_bytes()) / static_cast<double>(ckpt.total_elements())
        << " bits per parameter)";
    out.unsetf(std::ios::fixed);
  }
  out << "\n";
}

void inspect_checkpoint(const std::string& path, std::ostream& out) {
  inspect_checkpoint(*open_checkpoint(path), out);
}

}  // namespace tessera::checkpoint
