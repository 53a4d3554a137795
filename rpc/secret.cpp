#include "rpc/secret.h"

#include <cstdio>
#include <random>

#include "common/error.h"

namespace tessera::rpc {

Secret make_secret() {
  Secret s{};
  if (FILE* f = std::fopen("/dev/urandom", "rb")) {
    const size_t n = std::fread(s.data(), 1, s.size(), f);
    std::fclose(f);
    if (n == s.size()) return s;
  }
  std::random_device rd;
  for (size_t i = 0; i < s.size(); i += 4) {
    const uint32_t r = rd();
    for (size_t j = 0; j < 4 && i + j < s.size(); ++j) s[i + j] = static_cast<uint8_t>(r >> (8 * j));
  }
  return s;
}

std::string secret_to_hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

Secret secret_from_hex(std::string_view hex) {
  TESSERA_REQUIRE(hex.size() == 2 * kSecretBytes, ErrorKind::kInvalidInput, "job secret: expected ",
                  2 * kSecretBytes, " hex digits, got ", hex.size());
  Secret s{};
  for (size_t i = 0; i < kSecretBytes; ++i) {
    const int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
    TESSERA_REQUIRE(hi >= 0 && lo >= 0, ErrorKind::kInvalidInput, "job secret: not a hex digit at offset ",
                    hi < 0 ? 2 * i : 2 * i + 1);
    s[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return s;
}

bool secret_equal(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  if (a.size() != b.size()) return false;
  // volatile keeps the compiler from turning the loop into an early-exit memcmp.
  volatile uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = diff | static_cast<uint8_t>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace tessera::rpc
