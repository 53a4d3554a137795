// One Communicator per group of the Topology, built once at start-up.
#pragma once

#include <memory>

#include "collectives/communicator.h"
#include "collectives/mpi_context.h"
#include "collectives/topology.h"

namespace tessera {

struct GroupCommunicators {
  // Group rank == the matching Topology coordinate (tp_rank, pp_rank, cp_rank, ep_rank).
  std::unique_ptr<Communicator> world;  // all ranks, rank == world rank
  std::unique_ptr<Communicator> tp;     // same (pp, cp): consecutive world ranks
  std::unique_ptr<Communicator> pp;     // same (cp, tp): the pipeline column, stage order
  std::unique_ptr<Communicator> cp;     // same (pp, tp): the context-parallel ring
  std::unique_ptr<Communicator> ep;     // `ep` consecutive ranks of one stage
};

// Collective over the world: every rank calls it with the same config. Groups of size
// one are LocalCommunicators (no MPI); a world of one makes no MPI calls at all.
// Throws kInvalidInput when the topology does not match the launch (MPI's world size).
// The communicators must be destroyed before `mpi`.
GroupCommunicators make_group_communicators(MpiContext& mpi, const Topology& topology);

}  // namespace tessera
