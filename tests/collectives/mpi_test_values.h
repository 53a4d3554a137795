// Deterministic test values: element i contributed by world rank w, small integers so
// that float sums are exact and every rank can compute every expected result.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "collectives/communicator.h"
#include "collectives/group_communicators.h"
#include "collectives/topology.h"

namespace tessera::test {

template <typename T>
constexpr CommType comm_type_of() {
  if constexpr (std::is_same_v<T, float>) return CommType::kF32;
  else if constexpr (std::is_same_v<T, int32_t>) return CommType::kI32;
  else if constexpr (std::is_same_v<T, int64_t>) return CommType::kI64;
  else return CommType::kU8;
}

template <typename T>
T value_of(int w, size_t i) {
  const int v = static_cast<int>((w * 7 + i * 3 + 1) % 100);
  if constexpr (std::is_signed_v<T> || std::is_floating_point_v<T>) return static_cast<T>(v - 50);
  else return static_cast<T>(v);
}

template <typename T>
T reduce(ReduceOp op, T a, T b) {
  switch (op) {
    case ReduceOp::kSum: return static_cast<T>(a + b);
    case ReduceOp::kMax: return std::max(a, b);
    case ReduceOp::kMin: return std::min(a, b);
  }
  return a;
}

// One group of a grid, with the world ranks it must contain (from the Topology).
struct GroupUnderTest {
  Communicator* comm;
  std::vector<int> members;
};

// All groups of one grid: world, tp, pp, cp, ep.
inline std::vector<GroupUnderTest> groups_of(GroupCommunicators& g, const Topology& t) {
  std::vector<int> all(static_cast<size_t>(t.world_size()));
  for (int i = 0; i < t.world_size(); ++i) all[static_cast<size_t>(i)] = i;
  return {{g.world.get(), all},
          {g.tp.get(), t.tp_group()},
          {g.pp.get(), t.pp_column()},
          {g.cp.get(), t.cp_ring()},
          {g.ep.get(), t.ep_group_ranks()}};
}

inline std::string grid_name(const ParallelConfig& c) {
  return "tp " + std::to_string(c.tp) + " x pp " + std::to_string(c.pp) + " x cp " + std::to_string(c.cp) +
         " (ep " + std::to_string(c.ep) + ")";
}

}  // namespace tessera::test
