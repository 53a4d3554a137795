// Topology is pure arithmetic: checked exhaustively for every small grid, no MPI.
#include "collectives/topology.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "common/error.h"

namespace tessera {
namespace {

// The layout at compile time: tp fastest, then cp, then pp.
static_assert(topology_rank_of(ParallelConfig{2, 2, 1, 1}, 1, 0, 1) == 3);
static_assert(topology_rank_of(ParallelConfig{4, 2, 1, 1}, 1, 0, 0) == 4);
static_assert(topology_rank_of(ParallelConfig{2, 2, 2, 1}, 1, 1, 0) == 6);
static_assert(topology_coords_of(ParallelConfig{2, 2, 2, 1}, 5) == GridCoords{1, 0, 1});

std::vector<ParallelConfig> small_configs() {
  std::vector<ParallelConfig> out;
  for (int tp = 1; tp <= 4; ++tp)
    for (int pp = 1; pp <= 4; ++pp)
      for (int cp = 1; cp <= 3; ++cp)
        for (int ep = 1; ep <= tp * cp; ++ep)
          if ((tp * cp) % ep == 0) out.push_back(ParallelConfig{tp, pp, cp, ep});
  return out;
}

TEST(Topology, CoordinatesRoundTripForEverySmallGrid) {
  for (const ParallelConfig& c : small_configs()) {
    const int n = c.world_size();
    std::set<std::tuple<int, int, int>> seen;
    for (int r = 0; r < n; ++r) {
      Topology t(c, n, r);
      EXPECT_EQ(t.world_rank(), r);
      EXPECT_EQ(t.rank_of(t.pp_rank(), t.cp_rank(), t.tp_rank()), r);
      EXPECT_EQ(r, (t.pp_rank() * c.cp + t.cp_rank()) * c.tp + t.tp_rank());
      EXPECT_TRUE(t.tp_rank() >= 0 && t.tp_rank() < c.tp);
      EXPECT_TRUE(t.pp_rank() >= 0 && t.pp_rank() < c.pp);
      EXPECT_TRUE(t.cp_rank() >= 0 && t.cp_rank() < c.cp);
      EXPECT_EQ(t.is_first_stage(), t.pp_rank() == 0);
      EXPECT_EQ(t.is_last_stage(), t.pp_rank() == c.pp - 1);
      seen.insert({t.pp_rank(), t.cp_rank(), t.tp_rank()});
    }
    EXPECT_EQ(static_cast<int>(seen.size()), n) << "layout is not a bijection";
  }
}

// Each group: right size, contains me at my coordinate, members differ from me only
// in that coordinate, and the groups of one kind partition the world.
TEST(Topology, GroupsPartitionTheWorld) {
  for (const ParallelConfig& c : small_configs()) {
    const int n = c.world_size();
    std::set<std::vector<int>> tp_groups, pp_groups, cp_groups, ep_groups;
    for (int r = 0; r < n; ++r) {
      Topology t(c, n, r);
      const auto tp = t.tp_group(), pp = t.pp_column(), cp = t.cp_ring(), ep = t.ep_group_ranks();
      ASSERT_EQ(static_cast<int>(tp.size()), c.tp);
      ASSERT_EQ(static_cast<int>(pp.size()), c.pp);
      ASSERT_EQ(static_cast<int>(cp.size()), c.cp);
      ASSERT_EQ(static_cast<int>(ep.size()), c.ep);
      EXPECT_EQ(tp[t.tp_rank()], r);
      EXPECT_EQ(pp[t.pp_rank()], r);
      EXPECT_EQ(cp[t.cp_rank()], r);
      EXPECT_EQ(ep[t.ep_rank()], r);
      for (int i = 0; i < c.tp; ++i) EXPECT_EQ(tp[i], tp[0] + i) << "TP group must be consecutive ranks";
      for (int m : pp) {
        Topology o(c, n, m);
        EXPECT_EQ(o.tp_rank(), t.tp_rank());
        EXPECT_EQ(o.cp_rank(), t.cp_rank());
      }
      for (int m : cp) {
        Topology o(c, n, m);
        EXPECT_EQ(o.tp_rank(), t.tp_rank());
        EXPECT_EQ(o.pp_rank(), t.pp_rank());
      }
      for (int m : ep) {
        Topology o(c, n, m);
        EXPECT_EQ(o.pp_rank(), t.pp_rank()) << "EP stays inside a stage";
        EXPECT_EQ(o.ep_group(), t.ep_group());
      }
      tp_groups.insert(tp);
      pp_groups.insert(pp);
      cp_groups.insert(cp);
      ep_groups.insert(ep);
    }
    EXPECT_EQ(static_cast<int>(tp_groups.size()), n / c.tp);
    EXPECT_EQ(static_cast<int>(pp_groups.size()), n / c.pp);
    EXPECT_EQ(static_cast<int>(cp_groups.size()), n / c.cp);
    EXPECT_EQ(static_cast<int>(ep_groups.size()), n / c.ep);
  }
}

TEST(Topology, Describe) {
  EXPECT_EQ(Topology(ParallelConfig{2, 2, 1, 1}, 4, 3).describe(), "rank 3: pp 1, cp 0, tp 1");
  EXPECT_EQ(Topology(ParallelConfig{2, 1, 2, 2}, 4, 3).describe(), "rank 3: pp 0, cp 1, tp 1, ep 1 of group 1");
}

TEST(Topology, FourByTwoLayout) {
  Topology t(ParallelConfig{4, 2, 1, 1}, 8, 6);
  EXPECT_EQ(t.tp_group(), (std::vector<int>{4, 5, 6, 7}));
  EXPECT_EQ(t.pp_column(), (std::vector<int>{2, 6}));
  EXPECT_EQ(t.cp_ring(), (std::vector<int>{6}));
  EXPECT_TRUE(t.is_last_stage());
  EXPECT_FALSE(t.is_first_stage());
}

std::string error_of(const ParallelConfig& c, int n, int r) {
  try {
    Topology t(c, n, r);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
    return e.what();
  }
  return "";
}

TEST(Topology, RejectsMismatchedLaunch) {
  EXPECT_EQ(error_of(ParallelConfig{4, 2, 1, 1}, 6, 0), "mpirun -n 6 with --tp 4 --pp 2 needs 8 ranks (tp x pp x cp = 4 x 2 x 1)");
  EXPECT_NE(error_of(ParallelConfig{1, 1, 1, 1}, 2, 0).find("mpirun -n 2 with --tp 1 needs 1 ranks"), std::string::npos);
  EXPECT_NE(error_of(ParallelConfig{2, 1, 1, 3}, 2, 0).find("--ep 3 must divide"), std::string::npos);
  EXPECT_NE(error_of(ParallelConfig{0, 1, 1, 1}, 0, 0).find("must be >= 1"), std::string::npos);
  EXPECT_NE(error_of(ParallelConfig{2, 1, 1, 1}, 2, 2).find("world rank 2 out of range"), std::string::npos);
}

}  // namespace
}  // namespace tessera
