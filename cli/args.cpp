#include "cli/args.h"

#include <cerrno>
#include <cstdlib>
#include <sstream>

#include "common/error.h"

namespace tessera::cli {

void Args::flag(const std::string& name, const std::string& value_name, const std::string& help,
                const std::string& default_value) {
  flags_.push_back({name, value_name, help, default_value});
}

void Args::positional(const std::string& name, const std::string& help) { positional_decl_.emplace_back(name, help); }

const Args::Flag& Args::find(const std::string& name) const {
  for (const Flag& f : flags_)
    if (f.name == name) return f;
  TESSERA_FAIL(ErrorKind::kInternal, "flag --", name, " was never declared for '", command_, "'");
}

bool Args::parse(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") return false;
    if (a.rfind("--", 0) != 0) {
      positional_values_.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    const Flag* f = nullptr;
    for (const Flag& cand : flags_)
      if (cand.name == name) f = &cand;
    TESSERA_REQUIRE(f != nullptr, ErrorKind::kInvalidInput, "tessera ", command_, ": unknown flag --", name,
                    " (see tessera ", command_, " --help)");
    if (f->value_name.empty()) {
      TESSERA_REQUIRE(!has_value, ErrorKind::kInvalidInput, "tessera ", command_, ": --", name, " takes no value");
      values_[name] = "1";
      continue;
    }
    if (!has_value) {
      TESSERA_REQUIRE(i + 1 < argc, ErrorKind::kInvalidInput, "tessera ", command_, ": --", name,
                      " needs a value (", f->value_name, ")");
      value = argv[++i];
    }
    values_[name] = value;
  }
  TESSERA_REQUIRE(positional_values_.size() <= positional_decl_.size(), ErrorKind::kInvalidInput, "tessera ",
                  command_, ": unexpected argument '", positional_values_.back(), "'");
  return true;
}

std::string Args::help() const {
  std::ostringstream os;
  os << "usage: tessera " << command_ << (flags_.empty() ? "" : " [flags]");
  for (const auto& [name, help] : positional_decl_) os << " " << name;
  os << "\n\n" << summary_ << "\n";
  if (!positional_decl_.empty()) {
    os << "\narguments:\n";
    for (const auto& [name, help] : positional_decl_) os << "  " << name << "\n      " << help << "\n";
  }
  os << "\nflags:\n";
  for (const Flag& f : flags_) {
    os << "  --" << f.name;
    if (!f.value_name.empty()) os << " " << f.value_name;
    os << "\n      " << f.help;
    if (!f.default_value.empty()) os << " (default: " << f.default_value << ")";
    os << "\n";
  }
  os << "  --help\n      show this help\n";
  return os.str();
}

bool Args::has(const std::string& name) const {
  (void)find(name);
  return values_.count(name) != 0;
}

std::string Args::str(const std::string& name) const {
  const Flag& f = find(name);
  auto it = values_.find(name);
  return it != values_.end() ? it->second : f.default_value;
}

int64_t Args::int64(const std::string& name) const {
  const std::string v = str(name);
  errno = 0;
  char* end = nullptr;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  TESSERA_REQUIRE(!v.empty() && end && *end == '\0' && errno == 0, ErrorKind::kInvalidInput, "tessera ", command_,
                  ": --", name, " expects an integer, got '", v, "'");
  return x;
}

double Args::real(const std::string& name) const {
  const std::string v = str(name);
  errno = 0;
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  TESSERA_REQUIRE(!v.empty() && end && *end == '\0' && errno == 0, ErrorKind::kInvalidInput, "tessera ", command_,
                  ": --", name, " expects a number, got '", v, "'");
  return x;
}

bool Args::on(const std::string& name) const { return has(name); }

}  // namespace tessera::cli
