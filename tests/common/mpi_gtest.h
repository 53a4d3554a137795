// GoogleTest under mpiexec: every rank runs every selected test; rank 0 prints the usual
// report, the other ranks only their failures (prefixed with the rank), and the result
// is the worst over all ranks, so one failing rank fails the job. Call after
// ::testing::InitGoogleTest, in place of RUN_ALL_TESTS.
#pragma once

namespace tessera::test {

int run_all_tests_on_every_rank(int world_rank);

}  // namespace tessera::test
