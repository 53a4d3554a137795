// main() for collectives_mpi_test: every rank runs every test; rank 0 prints the
// usual report, other ranks print only their failures (prefixed with the rank), and
// the exit code is the worst over all ranks, so one failing rank fails mpiexec.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>

#include "tests/collectives/mpi_test_env.h"

namespace tessera::test {

namespace {
MpiContext* g_mpi = nullptr;  // set once in main, before any test runs

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
  if (mpi.world_rank() == 0) {
    std::printf("collectives_mpi_test: %s\n", mpi.describe().c_str());
  } else {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new tessera::test::FailurePrinter(mpi.world_rank()));
  }
  int rc = RUN_ALL_TESTS();
  int worst = rc;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return worst;
}
