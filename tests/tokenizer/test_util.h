// Shared helpers for the tokenizer tests: the llama.cpp .inp/.out vector files.
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "common/mapped_file.h"

namespace tessera::test {

inline std::string data_path(const std::string& rel) { return std::string(TESSERA_TEST_DATA) + "/" + rel; }
inline std::string asset_path(const std::string& rel) { return std::string(TESSERA_ASSETS) + "/" + rel; }

struct VocabCase {
  std::string text;
  std::vector<int32_t> ids;
};

// .inp: cases separated by "\n__ggml_vocab_test__\n"; .out: one line of ids per case.
inline std::vector<VocabCase> read_cases(const std::string& stem) {
  const std::string inp = read_text_file(stem + ".inp");
  const std::string out = read_text_file(stem + ".out");
  std::vector<VocabCase> cases;
  const std::string sep = "\n__ggml_vocab_test__\n";
  for (size_t pos = 0;;) {
    const size_t at = inp.find(sep, pos);
    cases.push_back({inp.substr(pos, at == std::string::npos ? std::string::npos : at - pos), {}});
    if (at == std::string::npos) break;
    pos = at + sep.size();
  }
  std::istringstream lines(out);
  std::string line;
  size_t i = 0;
  while (std::getline(lines, line) && i < cases.size()) {
    std::istringstream ids(line);
    int32_t id;
    while (ids >> id) cases[i].ids.push_back(id);
    ++i;
  }
  return cases;
}

inline std::string ids_str(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += " " + std::to_string(id);
  return s;
}

}  // namespace tessera::test
