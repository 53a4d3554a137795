// main() for cp_mpi_test: every rank runs every selected test (ctest picks them with
// --gtest_filter per world size); rank 0 prints the usual report, other ranks only their
// failures, and the exit code is the worst over all ranks.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>

#include "tests/cp/cp_test_env.h"

namespace tessera::test {
namespace {
MpiContext* g_mpi = nullptr;

class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", rank_, r.file_name() ? r.file_name() : "?",
                 r.line_number(), r.summary());
  }

 private:
  int rank_;
};
}  // namespace

MpiContext& mpi() { return *g_mpi; }

}  // namespace tessera::test

int main(int argc, char** argv) {
  tessera::MpiContext mpi(&argc, &argv);
  tessera::test::g_mpi = &mpi;
  ::testing::InitGoogleTest(&argc, argv);
  if (mpi.world_rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new tessera::test::FailurePrinter(mpi.world_rank()));
  }
  int rc = RUN_ALL_TESTS();
  int worst = rc;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return worst;
}
