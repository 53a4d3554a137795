#include "collectives/group_communicators.h"

#include "collectives/local_communicator.h"
#include "collectives/mpi_communicator.h"
#include "common/error.h"

namespace tessera {

namespace {

// Every rank evaluates the same `group_size`, so either all ranks call the collective
// MPI_Comm_split or none does.
std::unique_ptr<Communicator> make_group(MpiContext& mpi, const char* name, int group_size, int color, int key) {
  if (group_size == 1) return std::make_unique<LocalCommunicator>(name, mpi.world_rank());
  return MpiCommunicator::split(mpi.world(), color, key, name);
}

}  // namespace

GroupCommunicators make_group_communicators(MpiContext& mpi, const Topology& t) {
  TESSERA_REQUIRE(t.world_size() == mpi.world_size() && t.world_rank() == mpi.world_rank(), ErrorKind::kInvalidInput,
                  "topology (", t.describe(), " of ", t.world_size(), ") does not match MPI (", mpi.describe(), ")");
  const ParallelConfig& c = t.config();
  GroupCommunicators g;
  g.world = t.world_size() == 1 ? std::unique_ptr<Communicator>(std::make_unique<LocalCommunicator>("world", 0))
                                : MpiCommunicator::dup(mpi.world(), "world");
  // Colors number the groups; keys order the members by their coordinate.
  g.tp = make_group(mpi, "tp", c.tp, t.pp_rank() * c.cp + t.cp_rank(), t.tp_rank());
  g.pp = make_group(mpi, "pp", c.pp, t.cp_rank() * c.tp + t.tp_rank(), t.pp_rank());
  g.cp = make_group(mpi, "cp", c.cp, t.pp_rank() * c.tp + t.tp_rank(), t.cp_rank());
  g.ep = make_group(mpi, "ep", c.ep, t.pp_rank() * (c.tp * c.cp / c.ep) + t.ep_group(), t.ep_rank());
  return g;
}

}  // namespace tessera
