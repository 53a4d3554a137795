// tessera::Error <-> kj::Exception across the control plane. A worker's error crosses
// the wire as a kj::Exception whose description starts with "[tessera:<kind>] ", so the
// coordinator rebuilds a tessera::Error of the same kind with the worker's message,
// prefixed by who failed ("rank 2 (node3:4711): ...").
#pragma once

#include <exception>
#include <string>

#include <kj/exception.h>

#include "common/error.h"

namespace tessera::rpc {

kj::Exception to_kj_exception(ErrorKind kind, const std::string& message);
// tessera::Error keeps its kind; any other std::exception becomes kInternal.
kj::Exception to_kj_exception(const std::exception& e);

// A DISCONNECTED kj exception (connection dropped, event loop gone) is kDisconnected;
// a tagged one keeps its kind; anything else is kInternal. `who` leads the message.
Error from_kj_exception(const kj::Exception& e, const std::string& who);

}  // namespace tessera::rpc
