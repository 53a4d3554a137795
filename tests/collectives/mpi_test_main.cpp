// main() for collectives_mpi_test: every rank runs every test; reporting and the
// combined result as in tests/common/mpi_gtest.h.
#include <gtest/gtest.h>

#include <cstdio>

#include "tests/collectives/mpi_test_env.h"
#include "tests/common/mpi_gtest.h"

namespace tessera::test {

namespace {
MpiContext* g_mpi = nullptr;  // set once in main, before any test runs
}  // namespace

MpiContext& mpi() { return *g_mpi; }

std::vector<ParallelConfig> grids_for(int n) {
  std::vector<ParallelConfig> out;
  for (int tp = 1; tp <= n; ++tp)
    for (int pp = 1; pp <= n; ++pp)
      for (int cp = 1; cp <= n; ++cp)
        if (tp * pp * cp == n) out.push_back(ParallelConfig{tp, pp, cp, tp * cp});
  return out;
}

}  // namespace tessera::test

int main(int argc, char** argv) {
  tessera::MpiContext mpi(&argc, &argv);
  tessera::test::g_mpi = &mpi;
  ::testing::InitGoogleTest(&argc, argv);
  if (mpi.world_rank() == 0) std::printf("collectives_mpi_test: %s\n", mpi.describe().c_str());
  return tessera::test::run_all_tests_on_every_rank(mpi.world_rank());
}
