#include "rpc/remote_error.h"

#include <string_view>

namespace tessera::rpc {

namespace {

constexpr std::string_view kTag = "[tessera:";

constexpr ErrorKind kAllKinds[] = {ErrorKind::kInvalidInput, ErrorKind::kNotFound,     ErrorKind::kUnsupported,
                                   ErrorKind::kResource,     ErrorKind::kDisconnected, ErrorKind::kInternal};

}  // namespace

kj::Exception to_kj_exception(ErrorKind kind, const std::string& message) {
  // DISCONNECTED is kept as a kj type too, so kj's own machinery treats it alike.
  const auto type = kind == ErrorKind::kDisconnected ? kj::Exception::Type::DISCONNECTED : kj::Exception::Type::FAILED;
  return kj::Exception(type, __FILE__, __LINE__,
                       kj::str(kTag.data(), error_kind_name(kind), "] ", message.c_str()));
}

kj::Exception to_kj_exception(const std::exception& e) {
  if (const auto* te = dynamic_cast<const Error*>(&e)) return to_kj_exception(te->kind(), te->what());
  return to_kj_exception(ErrorKind::kInternal, e.what());
}

Error from_kj_exception(const kj::Exception& e, const std::string& who) {
  const std::string_view d(e.getDescription().cStr(), e.getDescription().size());
  const size_t at = d.find(kTag);
  if (at != std::string_view::npos) {
    const size_t close = d.find("] ", at);
    if (close != std::string_view::npos) {
      const std::string_view name = d.substr(at + kTag.size(), close - at - kTag.size());
      for (ErrorKind k : kAllKinds) {
        if (name == error_kind_name(k)) return Error(k, who + ": " + std::string(d.substr(close + 2)));
      }
    }
  }
  if (e.getType() == kj::Exception::Type::DISCONNECTED)
    return Error(ErrorKind::kDisconnected, who + ": connection lost (" + std::string(d) + ")");
  return Error(ErrorKind::kInternal, who + ": " + std::string(d));
}

}  // namespace tessera::rpc
