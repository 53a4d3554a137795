// MPI for the life of the process: init in the constructor, finalize in the
// destructor. main() creates exactly one and passes it down (no singleton here; MPI
// itself allows only one init per process, which the constructor checks).
//
// Without mpirun, Open MPI initialises as a singleton: world size 1, rank 0, so
// `tessera generate` runs the same code path as a distributed launch.
//
// MPI_ERRORS_RETURN is set on MPI_COMM_WORLD (and by the communicators on every
// communicator they create), so a failed call returns a code that becomes a
// tessera::Error instead of aborting the job.
#pragma once

#include <mpi.h>

#include <string>

namespace tessera {

class MpiContext {
 public:
  // Requests MPI_THREAD_MULTIPLE (a worker may overlap communication from a second
  // thread) and accepts MPI_THREAD_SERIALIZED; anything less is kUnsupported.
  // argc/argv may be null.
  MpiContext(int* argc = nullptr, char*** argv = nullptr);
  ~MpiContext();
  MpiContext(const MpiContext&) = delete;
  MpiContext& operator=(const MpiContext&) = delete;

  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }
  // Rank among the processes on this host (MPI_Comm_split_type SHARED), used to pick a GPU.
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }
  const std::string& host_name() const { return host_name_; }
  // MPI_THREAD_MULTIPLE or MPI_THREAD_SERIALIZED: what the library provided.
  int thread_level() const { return thread_level_; }
  bool thread_multiple() const { return thread_level_ == MPI_THREAD_MULTIPLE; }
  // "rank 3 of 8 on node1 (local 1 of 2), MPI_THREAD_MULTIPLE"
  std::string describe() const;

  // MPI_COMM_WORLD (errors return). Not owned; valid while this context lives.
  MPI_Comm world() const { return MPI_COMM_WORLD; }

 private:
  int world_rank_ = 0;
  int world_size_ = 1;
  int local_rank_ = 0;
  int local_size_ = 1;
  int thread_level_ = MPI_THREAD_SINGLE;
  std::string host_name_;
};

// "MPI_THREAD_MULTIPLE" etc.
const char* mpi_thread_level_name(int level);

}  // namespace tessera
