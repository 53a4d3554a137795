// The job secret: 32 random bytes made once at launch (rank 0) and shared with every
// rank over MPI, never over the network the RPC port listens on. A peer must present
// it in Gate.hello before it gets a Worker capability (docs/CONTROL_PLANE.md).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace tessera::rpc {

inline constexpr size_t kSecretBytes = 32;
using Secret = std::array<uint8_t, kSecretBytes>;

// From /dev/urandom; std::random_device when that cannot be read.
Secret make_secret();

std::string secret_to_hex(std::span<const uint8_t> bytes);
// Throws tessera::Error(kInvalidInput) unless `hex` is exactly 64 hex digits.
Secret secret_from_hex(std::string_view hex);

// Compares in time that depends only on the lengths, so a peer cannot find the secret
// byte by byte by timing refusals. The length itself is not secret.
bool secret_equal(std::span<const uint8_t> a, std::span<const uint8_t> b);

}  // namespace tessera::rpc
