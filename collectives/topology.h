// Where this rank sits in the parallel grid: one immutable value (TensorRT-LLM's
// WorldConfig), pure arithmetic, no MPI. Every sub-communicator is built from it.
//
// Layout: tp fastest, then cp, then pp:
//     world_rank = (pp_rank * cp + cp_rank) * tp + tp_rank
// so a TP group is `tp` consecutive ranks (mpirun fills a node with consecutive ranks,
// and TP's per-layer allreduces are the chattiest traffic, so they stay on one node).
// A "stage" is the tp * cp ranks with the same pp_rank. EP reuses the ranks of a stage:
// stage index s = cp_rank * tp + tp_rank, EP group s / ep, EP rank s % ep.
#pragma once

#include <string>
#include <vector>

namespace tessera {

struct ParallelConfig {
  int tp = 1, pp = 1, cp = 1, ep = 1;

  constexpr int world_size() const { return tp * pp * cp; }
  constexpr bool operator==(const ParallelConfig&) const = default;
};

// (pp, cp, tp) coordinates of one rank.
struct GridCoords {
  int pp = 0, cp = 0, tp = 0;
  constexpr bool operator==(const GridCoords&) const = default;
};

// The two directions of the layout, for callers that need them without a Topology.
constexpr int topology_rank_of(const ParallelConfig& c, int pp, int cp, int tp) { return (pp * c.cp + cp) * c.tp + tp; }
constexpr GridCoords topology_coords_of(const ParallelConfig& c, int world_rank) {
  return GridCoords{world_rank / (c.tp * c.cp), (world_rank / c.tp) % c.cp, world_rank % c.tp};
}

// Throws tessera::Error(kInvalidInput) naming what is wrong with the sizes, e.g.
// "mpirun -n 6 with --tp 4 --pp 2 needs 8 ranks".
void topology_validate(const ParallelConfig& config, int world_size, int world_rank);

class Topology {
 public:
  // Validates (see topology_validate); world_size is what MPI reports.
  Topology(const ParallelConfig& config, int world_size, int world_rank);

  constexpr const ParallelConfig& config() const { return config_; }
  constexpr int world_size() const { return config_.world_size(); }
  constexpr int world_rank() const { return world_rank_; }
  constexpr int tp_rank() const { return coords_.tp; }
  constexpr int pp_rank() const { return coords_.pp; }
  constexpr int cp_rank() const { return coords_.cp; }
  constexpr int tp_size() const { return config_.tp; }
  constexpr int pp_size() const { return config_.pp; }
  constexpr int cp_size() const { return config_.cp; }
  constexpr int ep_size() const { return config_.ep; }
  constexpr GridCoords coords() const { return coords_; }

  // Index within the stage's tp * cp ranks, and the EP coordinates derived from it.
  constexpr int stage_index() const { return coords_.cp * config_.tp + coords_.tp; }
  constexpr int ep_rank() const { return stage_index() % config_.ep; }
  constexpr int ep_group() const { return stage_index() / config_.ep; }

  constexpr bool is_first_stage() const { return coords_.pp == 0; }
  constexpr bool is_last_stage() const { return coords_.pp == config_.pp - 1; }

  constexpr int rank_of(int pp, int cp, int tp) const { return topology_rank_of(config_, pp, cp, tp); }

  // World ranks of each group this rank belongs to, in group-rank order (so entry i is
  // group rank i, and this rank's group rank is its tp_rank / pp_rank / cp_rank / ep_rank).
  std::vector<int> tp_group() const;   // same (pp, cp), tp = 0..tp-1: consecutive ranks
  std::vector<int> pp_column() const;  // same (cp, tp), pp = 0..pp-1: the pipeline
  std::vector<int> cp_ring() const;    // same (pp, tp), cp = 0..cp-1
  std::vector<int> ep_group_ranks() const;  // `ep` consecutive stage indices in my stage

  // "rank 3: pp 1, cp 0, tp 1" (", ep r/g" appended when ep > 1).
  std::string describe() const;

 private:
  ParallelConfig config_;
  int world_rank_;
  GridCoords coords_;
};

}  // namespace tessera
