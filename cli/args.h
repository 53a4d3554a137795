// A small declarative command-line parser: each subcommand declares its flags once,
// and --help is generated from the same declarations, so it is always complete.
// Errors name the flag and what was wrong.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tessera::cli {

class Args {
 public:
  Args(std::string command, std::string summary) : command_(std::move(command)), summary_(std::move(summary)) {}

  // Declare flags (before parse). `value_name` empty means a boolean switch.
  void flag(const std::string& name, const std::string& value_name, const std::string& help,
            const std::string& default_value = "");
  void positional(const std::string& name, const std::string& help);

  // Parses argv[first..]; throws tessera::Error(kInvalidInput) naming the bad flag.
  // Returns false when --help was asked (the help text is in help()).
  bool parse(int argc, char** argv, int first);
  std::string help() const;

  bool has(const std::string& name) const;           // given on the command line
  std::string str(const std::string& name) const;    // value or default
  int64_t int64(const std::string& name) const;
  double real(const std::string& name) const;
  bool on(const std::string& name) const;            // boolean switch
  const std::vector<std::string>& positionals() const { return positional_values_; }

 private:
  struct Flag {
    std::string name, value_name, help, default_value;
  };
  const Flag& find(const std::string& name) const;

  std::string command_, summary_;
  std::vector<Flag> flags_;
  std::vector<std::pair<std::string, std::string>> positional_decl_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_values_;
};

}  // namespace tessera::cli
