#include "collectives/mpi_context.h"

#include "collectives/mpi_error.h"
#include "common/error.h"

namespace tessera {

const char* mpi_thread_level_name(int level) {
  switch (level) {
    case MPI_THREAD_SINGLE: return "MPI_THREAD_SINGLE";
    case MPI_THREAD_FUNNELED: return "MPI_THREAD_FUNNELED";
    case MPI_THREAD_SERIALIZED: return "MPI_THREAD_SERIALIZED";
    case MPI_THREAD_MULTIPLE: return "MPI_THREAD_MULTIPLE";
    default: return "MPI_THREAD_?";
  }
}

MpiContext::MpiContext(int* argc, char*** argv) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  TESSERA_REQUIRE(!initialized && !finalized, ErrorKind::kInternal,
                  "MpiContext: MPI was already ", finalized ? "finalized" : "initialized",
                  " in this process (create exactly one MpiContext, in main)");
  // MPI_Init_thread aborts on failure whatever the error handler (none is set yet).
  MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &thread_level_);
  try {
    TESSERA_REQUIRE(thread_level_ >= MPI_THREAD_SERIALIZED, ErrorKind::kUnsupported,
                    "MPI provides only ", mpi_thread_level_name(thread_level_),
                    "; tessera needs MPI_THREAD_SERIALIZED or MPI_THREAD_MULTIPLE");
    mpi_check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler(world)");
    mpi_check(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_), "MPI_Comm_rank(world)");
    mpi_check(MPI_Comm_size(MPI_COMM_WORLD, &world_size_), "MPI_Comm_size(world)");

    char name[MPI_MAX_PROCESSOR_NAME];
    int len = 0;
    mpi_check(MPI_Get_processor_name(name, &len), "MPI_Get_processor_name");
    host_name_.assign(name, static_cast<size_t>(len));

    // Processes that can share memory = the same host: their order picks the GPU.
    MPI_Comm local = MPI_COMM_NULL;
    mpi_check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank_, MPI_INFO_NULL, &local),
              "MPI_Comm_split_type(SHARED)");
    int rc_rank = MPI_Comm_rank(local, &local_rank_);
    int rc_size = MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
    mpi_check(rc_rank, "MPI_Comm_rank(local)");
    mpi_check(rc_size, "MPI_Comm_size(local)");
  } catch (...) {
    MPI_Finalize();
    throw;
  }
}

MpiContext::~MpiContext() {
  // Every communicator made from this context must be freed by now (their owners are
  // destroyed before the context; main() declares the context first).
  MPI_Finalize();
}

std::string MpiContext::describe() const {
  return detail::concat("rank ", world_rank_, " of ", world_size_, " on ", host_name_, " (local ", local_rank_, " of ",
                        local_size_, "), ", mpi_thread_level_name(thread_level_));
}

}  // namespace tessera
