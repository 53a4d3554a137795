// Shared by the multi-rank tests: the process's MpiContext (made by main()) and the
// grids each test runs on.
#pragma once

#include <vector>

#include "collectives/mpi_context.h"
#include "collectives/topology.h"

namespace tessera::test {

MpiContext& mpi();

// Every tp x pp x cp factorisation of the world size (2 -> 2x1x1, 1x2x1, 1x1x2; 8 ->
// ten grids including 4x2x1 and 2x2x2), with ep = tp * cp (a whole stage).
std::vector<ParallelConfig> grids_for(int world_size);

}  // namespace tessera::test
