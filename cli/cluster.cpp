#include "cli/cluster.h"

#include <mpi.h>
#include <netdb.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>

#include "checkpoint/open.h"
#include "collectives/group_communicators.h"
#include "collectives/mpi_context.h"
#include "common/error.h"
#include "coordinator/rpc_step_runner.h"
#include "model/config_loader.h"
#include "rpc/coordinator_client.h"
#include "rpc/secret.h"
#include "rpc/worker_server.h"
#include "worker/rank_executor.h"

namespace tessera::cli {

namespace {

constexpr size_t kEndpointBytes = 256;

// The IPv4 address this host's name resolves to (the address MPI's TCP transport
// uses on an ordinary cluster); 127.0.0.1 when it resolves to nothing better.
std::string host_address(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string out = "127.0.0.1";
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) == 0) {
    for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
      char buf[INET_ADDRSTRLEN];
      const auto* sin = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
      if (inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf) != nullptr) {
        out = buf;
        if (out.rfind("127.", 0) != 0) break;
      }
    }
    freeaddrinfo(res);
  }
  return out;
}

[[noreturn]] void abort_job(int rank, const std::string& host, const char* what) {
  std::cout.flush();
  std::cerr << "\ntessera (rank " << rank << " on " << host << "): error: " << what << "\n"
            << "tessera: aborting the job (all ranks)" << std::endl;
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::_Exit(1);
}

}  // namespace

bool launched_distributed(const ParallelConfig& p) {
  // main() is the only place that looks at the environment: the launcher's variables.
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"}) {
    const char* s = std::getenv(v);
    if (s != nullptr && std::atoi(s) > 1) return true;
  }
  return p.world_size() > 1;
}

int run_cluster(int* argc, char*** argv, const ClusterOptions& options,
                const std::function<int(StepRunner& runner, const Topology& topology)>& coordinator_main) {
  MpiContext mpi(argc, argv);
  const int rank = mpi.world_rank();
  const std::string host = mpi.host_name();
  try {
    const Topology topology(options.parallel, mpi.world_size(), rank);
    GroupCommunicators comms = make_group_communicators(mpi, topology);

    // The job secret, made by rank 0 and shared over MPI (never on the command line).
    rpc::Secret secret{};
    if (rank == 0) secret = rpc::make_secret();
    comms.world->broadcast(secret.data(), secret.size(), CommType::kU8, 0);

    // Bind where rank 0 can reach us: loopback when on its host, else our address.
    char root_host[kEndpointBytes] = {};
    std::strncpy(root_host, host.c_str(), kEndpointBytes - 1);
    comms.world->broadcast(root_host, kEndpointBytes, CommType::kU8, 0);
    const std::string bind = !options.rpc_host.empty() ? options.rpc_host
                             : host == root_host     ? "127.0.0.1"
                                                     : host_address(host);

    RankExecutor executor(topology, comms, host);
    rpc::WorkerServerOptions so;
    so.bind_host = bind;
    so.secret = secret;
    so.rank = rank;
    so.host = host;
    rpc::WorkerServer server(executor, so);

    char mine[kEndpointBytes] = {};
    std::strncpy(mine, server.endpoint().c_str(), kEndpointBytes - 1);
    std::vector<char> all(kEndpointBytes * static_cast<size_t>(mpi.world_size()));
    comms.world->allgather(mine, all.data(), kEndpointBytes, CommType::kU8);
    if (rank != 0) {
      server.wait();  // until the coordinator's shutdown
      return 0;
    }

    std::vector<std::string> endpoints;
    for (int r = 0; r < mpi.world_size(); ++r) endpoints.emplace_back(all.data() + r * kEndpointBytes);
    rpc::CoordinatorOptions co;
    co.secret = secret;
    co.call_timeout = options.step_timeout;
    rpc::CoordinatorClient client(endpoints, co);
    rpc::LoadShardRequest load = options.load;
    load.parallel = {options.parallel.tp, options.parallel.pp, options.parallel.cp, options.parallel.ep};
    const std::vector<rpc::WorkerStatsValue> loaded = client.load_shard(load);
    if (options.print_layout) {
      for (const rpc::WorkerStatsValue& w : loaded) {
        const GridCoords g = topology_coords_of(options.parallel, w.rank);
        std::fprintf(stderr, "rank %d on %s: pp %d tp %d, weights %.1f MB, read from the checkpoint %.1f MB\n", w.rank,
                     w.host.c_str(), g.pp, g.tp, w.weight_bytes / 1e6, w.checkpoint_bytes_read / 1e6);
      }
    }

    // The coordinator holds no weights: the config comes from the checkpoint header.
    const ModelConfig config = load_model_config(*checkpoint::open_checkpoint(load.model_path));
    const int64_t blocks = load.kv_blocks > 0 ? load.kv_blocks
                                              : (config.max_seq_len + load.kv_block_size - 1) / load.kv_block_size;
    RpcStepRunner runner(client, topology, config, blocks, load.kv_block_size);
    const int code = coordinator_main(runner, topology);
    client.shutdown();
    return code;
  } catch (const Error& e) {
    abort_job(rank, host, (std::string(error_kind_name(e.kind())) + ": " + e.what()).c_str());
  } catch (const std::exception& e) {
    abort_job(rank, host, e.what());
  }
}

}  // namespace tessera::cli
