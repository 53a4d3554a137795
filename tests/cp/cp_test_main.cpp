// main() for cp_mpi_test: every rank runs every selected test (ctest picks them with
// --gtest_filter per world size); reporting and the combined result as in
// tests/common/mpi_gtest.h.
#include <gtest/gtest.h>

#include "tests/common/mpi_gtest.h"
#include "tests/cp/cp_test_env.h"

namespace tessera::test {
namespace {
MpiContext* g_mpi = nullptr;
}  // namespace

MpiContext& mpi() { return *g_mpi; }

}  // namespace tessera::test

int main(int argc, char** argv) {
  tessera::MpiContext mpi(&argc, &argv);
  tessera::test::g_mpi = &mpi;
  ::testing::InitGoogleTest(&argc, argv);
  return tessera::test::run_all_tests_on_every_rank(mpi.world_rank());
}
