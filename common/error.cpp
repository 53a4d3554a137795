#include "common/error.h"

namespace tessera {

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidInput: return "invalid_input";
    case ErrorKind::kNotFound: return "not_found";
    case ErrorKind::kUnsupported: return "unsupported";
    case ErrorKind::kResource: return "resource";
    case ErrorKind::kDisconnected: return "disconnected";
    case ErrorKind::kInternal: return "internal";
  }
  return "unknown";
}

}  // namespace tessera
