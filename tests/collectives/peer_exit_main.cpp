// What Open MPI does when a peer goes away in the middle of an operation (run by
// ctest under mpiexec -n 2; see docs/COLLECTIVES.md, "Failures"):
//   peer_exit crash     rank 1 dies without MPI_Finalize while rank 0 waits in recv:
//                       the runtime (ORTE) kills the job; mpiexec exits non-zero.
//   peer_exit finalize  rank 1 finalizes and exits cleanly while rank 0 waits: no MPI
//                       error is ever raised (the ob1 PML has no failure detector), so
//                       rank 0 would wait forever; here it gives up after 3 s of
//                       test() polling to show that only a timeout above the
//                       Communicator can catch this case.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "collectives/mpi_communicator.h"
#include "collectives/mpi_context.h"
#include "common/error.h"

int main(int argc, char** argv) {
  using namespace tessera;
  const bool crash = argc > 1 && std::strcmp(argv[1], "crash") == 0;
  MpiContext mpi(&argc, &argv);
  auto world = MpiCommunicator::dup(mpi.world(), "world");
  if (world->size() != 2) return 2;
  float x = 0;
  if (world->rank() == 1) {
    world->barrier();
    if (crash) std::_Exit(3);  // no MPI_Finalize: a crashed worker
    world.reset();
    return 0;  // MpiContext finalizes: a worker that left cleanly
  }
  world->barrier();
  try {
    auto r = world->irecv(&x, 1, CommType::kF32, 1, MpiTag::kTest);
    const auto t0 = std::chrono::steady_clock::now();
    while (!r->test()) {
      if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(3)) {
        std::printf("rank 0: no error after 3 s waiting for a departed peer (undetectable without a timeout)\n");
        return 4;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::printf("rank 0: receive completed unexpectedly\n");
    return 5;
  } catch (const Error& e) {
    std::printf("rank 0: tessera::Error(%s): %s\n", error_kind_name(e.kind()), e.what());
    return 6;
  }
}
