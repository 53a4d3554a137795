#include "collectives/topology.h"

#include "common/error.h"

namespace tessera {

namespace {
// "--tp 4 --pp 2" listing only the dimensions that are not 1 (or "--tp 1").
std::string flags_of(const ParallelConfig& c) {
  std::string s;
  auto add = [&](const char* flag, int v) {
    if (v == 1) return;
    if (!s.empty()) s += ' ';
    s += detail::concat("--", flag, ' ', v);
  };
  add("tp", c.tp);
  add("pp", c.pp);
  add("cp", c.cp);
  add("ep", c.ep);
  return s.empty() ? std::string("--tp 1") : s;
}
}  // namespace

void topology_validate(const ParallelConfig& c, int world_size, int world_rank) {
  TESSERA_REQUIRE(c.tp >= 1 && c.pp >= 1 && c.cp >= 1 && c.ep >= 1, ErrorKind::kInvalidInput,
                  "parallel sizes must be >= 1, got tp ", c.tp, ", pp ", c.pp, ", cp ", c.cp, ", ep ", c.ep);
  TESSERA_REQUIRE(world_size == c.world_size(), ErrorKind::kInvalidInput, "mpirun -n ", world_size, " with ",
                  flags_of(c), " needs ", c.world_size(), " ranks (tp x pp x cp = ", c.tp, " x ", c.pp, " x ", c.cp,
                  ")");
  // EP reuses the ranks of a stage, so its groups must tile the stage exactly.
  TESSERA_REQUIRE((c.tp * c.cp) % c.ep == 0, ErrorKind::kInvalidInput, "--ep ", c.ep,
                  " must divide the ranks of a pipeline stage (tp x cp = ", c.tp * c.cp, ")");
  TESSERA_REQUIRE(world_rank >= 0 && world_rank < world_size, ErrorKind::kInvalidInput, "world rank ", world_rank,
                  " out of range for world size ", world_size);
}

Topology::Topology(const ParallelConfig& config, int world_size, int world_rank)
    : config_(config), world_rank_(world_rank) {
  topology_validate(config, world_size, world_rank);
  coords_ = topology_coords_of(config_, world_rank);
}

std::vector<int> Topology::tp_group() const {
  std::vector<int> r;
  for (int t = 0; t < config_.tp; ++t) r.push_back(rank_of(coords_.pp, coords_.cp, t));
  return r;
}

std::vector<int> Topology::pp_column() const {
  std::vector<int> r;
  for (int p = 0; p < config_.pp; ++p) r.push_back(rank_of(p, coords_.cp, coords_.tp));
  return r;
}

std::vector<int> Topology::cp_ring() const {
  std::vector<int> r;
  for (int c = 0; c < config_.cp; ++c) r.push_back(rank_of(coords_.pp, c, coords_.tp));
  return r;
}

std::vector<int> Topology::ep_group_ranks() const {
  std::vector<int> r;
  const int stage0 = coords_.pp * config_.tp * config_.cp;  // world rank of stage index 0
  for (int e = 0; e < config_.ep; ++e) r.push_back(stage0 + ep_group() * config_.ep + e);
  return r;
}

std::string Topology::describe() const {
  std::string s = detail::concat("rank ", world_rank_, ": pp ", coords_.pp, ", cp ", coords_.cp, ", tp ", coords_.tp);
  if (config_.ep > 1) s += detail::concat(", ep ", ep_rank(), " of group ", ep_group());
  return s;
}

}  // namespace tessera
