// A header-only stand-in for glog, for the GPU check build only (tools/gpu_check/):
// the GPU machine has no Debian packages, and the code it builds uses glog just for
// invariants (CHECK*, DCHECK*, LOG(FATAL)). Messages go to stderr; FATAL aborts, as
// glog does. The regular build always uses the real glog.
#pragma once

#include <cstdlib>
#include <iostream>
#include <sstream>

namespace tessera_glog_shim {

enum Severity { INFO = 0, WARNING = 1, ERROR = 2, FATAL = 3 };

class LogMessage {
 public:
  LogMessage(const char* file, int line, int severity) : severity_(severity) {
    static const char kTag[] = "IWEF";
    os_ << kTag[severity] << ' ' << file << ':' << line << "] ";
  }
  ~LogMessage() {
    os_ << '\n';
    std::cerr << os_.str() << std::flush;
    if (severity_ == FATAL) std::abort();
  }
  std::ostream& stream() { return os_; }

 private:
  int severity_;
  std::ostringstream os_;
};

// Turns `cond ? (void)0 : Voidify() & stream << ...` into one void expression.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace tessera_glog_shim

#define LOG(severity) ::tessera_glog_shim::LogMessage(__FILE__, __LINE__, ::tessera_glog_shim::severity).stream()
#define LOG_IF(severity, cond) \
  !(cond) ? (void)0 : ::tessera_glog_shim::Voidify() & LOG(severity)
#define VLOG(level) LOG_IF(INFO, false)
#define CHECK(cond) LOG_IF(FATAL, !(cond)) << "Check failed: " #cond " "
#define TESSERA_SHIM_CHECK_OP(a, b, op) LOG_IF(FATAL, !((a)op(b))) << "Check failed: " #a " " #op " " #b " "
#define CHECK_EQ(a, b) TESSERA_SHIM_CHECK_OP(a, b, ==)
#define CHECK_NE(a, b) TESSERA_SHIM_CHECK_OP(a, b, !=)
#define CHECK_LT(a, b) TESSERA_SHIM_CHECK_OP(a, b, <)
#define CHECK_LE(a, b) TESSERA_SHIM_CHECK_OP(a, b, <=)
#define CHECK_GT(a, b) TESSERA_SHIM_CHECK_OP(a, b, >)
#define CHECK_GE(a, b) TESSERA_SHIM_CHECK_OP(a, b, >=)
#define CHECK_NOTNULL(p) (p)
#ifdef NDEBUG
#define DCHECK(cond) LOG_IF(FATAL, false && !(cond))
#define DCHECK_EQ(a, b) DCHECK((a) == (b))
#define DCHECK_NE(a, b) DCHECK((a) != (b))
#define DCHECK_LT(a, b) DCHECK((a) < (b))
#define DCHECK_LE(a, b) DCHECK((a) <= (b))
#define DCHECK_GT(a, b) DCHECK((a) > (b))
#define DCHECK_GE(a, b) DCHECK((a) >= (b))
#else
#define DCHECK(cond) CHECK(cond)
#define DCHECK_EQ(a, b) CHECK_EQ(a, b)
#define DCHECK_NE(a, b) CHECK_NE(a, b)
#define DCHECK_LT(a, b) CHECK_LT(a, b)
#define DCHECK_LE(a, b) CHECK_LE(a, b)
#define DCHECK_GT(a, b) CHECK_GT(a, b)
#define DCHECK_GE(a, b) CHECK_GE(a, b)
#endif
