// Errors that callers can act on.
//
// tessera::Error is thrown for anything that comes from outside the process: a bad
// file, a bad request, a lost peer. The message names what was wrong (file, tensor,
// field, offset, rank) so a user can fix it without a debugger. Invariants inside one
// process use glog's CHECK instead (a bug here, not bad input).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace tessera {

enum class ErrorKind {
  kInvalidInput,   // a file, flag or request is malformed
  kNotFound,       // a file, tensor or key is missing
  kUnsupported,    // well-formed but not implemented (dtype, architecture)
  kResource,       // out of memory, capacity, time
  kDisconnected,   // a peer went away
  kInternal,       // a bug: should never reach a user
};

const char* error_kind_name(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string message)
      : std::runtime_error(std::move(message)), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

// Throws tessera::Error(kind, concatenation of args) when cond is false.
#define TESSERA_REQUIRE(cond, kind, ...)                                          \
  do {                                                                            \
    if (!(cond)) throw ::tessera::Error((kind), ::tessera::detail::concat(__VA_ARGS__)); \
  } while (0)

#define TESSERA_FAIL(kind, ...) throw ::tessera::Error((kind), ::tessera::detail::concat(__VA_ARGS__))

}  // namespace tessera
