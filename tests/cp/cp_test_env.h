// Shared by the context-parallel tests: the process's MpiContext (made by main()).
#pragma once

#include "collectives/mpi_context.h"

namespace tessera::test {

MpiContext& mpi();

}  // namespace tessera::test
