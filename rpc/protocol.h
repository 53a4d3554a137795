// The control-plane protocol version: the one constant both sides compare in
// Gate.hello (docs/CONTROL_PLANE.md, "Versioning"). Bump it for any change an old
// peer would misread; adding a field with a backwards-compatible default does not.
#pragma once

#include <cstdint>

namespace tessera::rpc {

inline constexpr uint32_t kProtocolVersion = 1;

}  // namespace tessera::rpc
