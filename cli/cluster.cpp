#include "cli/cluster.h"

#include <mpi.h>
#include <netdb.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <condition_variable>
#include <thread>

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
  if (out.rfind("127.", 0) == 0) {
    // The name does not resolve (or resolves to loopback, as Debian's 127.0.1.1 line
    // does): a rank on another host must still be reachable, so take the first IPv4
    // address of an interface that is up and not loopback.
    ifaddrs* ifs = nullptr;
    if (getifaddrs(&ifs) == 0) {
      for (ifaddrs* i = ifs; i != nullptr; i = i->ifa_next) {
        if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
        if ((i->ifa_flags & IFF_UP) == 0 || (i->ifa_flags & IFF_LOOPBACK) != 0) continue;
        char buf[INET_ADDRSTRLEN];
        const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
        if (inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf) != nullptr) {
          out = buf;
          break;
        }
      }
      freeifaddrs(ifs);
    }
  }
  return out;
}

// Start-up time limit. Armed before MPI_Init; if start-up has not finished by the
// deadline, this rank prints what it was waiting for and aborts the job (MPI_Abort
// when MPI is up, else _exit: the launcher then ends the other ranks).
class StartupWatchdog {
 public:
  StartupWatchdog(std::chrono::milliseconds limit, std::string who) : who_(std::move(who)) {
    deadline_ = std::chrono::steady_clock::now() + limit;
    limit_s_ = static_cast<double>(limit.count()) / 1000.0;
    thread_ = std::thread([this] { run(); });
  }
  ~StartupWatchdog() { disarm(); }
  void phase(std::string what, std::string host = "") {
    std::lock_guard<std::mutex> lock(mu_);
    phase_ = std::move(what);
    if (!host.empty()) who_ = std::move(host);
  }
  void disarm() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  void extend(std::chrono::milliseconds by) {
    std::lock_guard<std::mutex> lock(mu_);
    deadline_ += by;
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!done_) {
      if (cv_.wait_until(lock, deadline_) == std::cv_status::timeout && !done_ &&
          std::chrono::steady_clock::now() >= deadline_) {
        std::fprintf(stderr,
                     "\ntessera (%s): error: start-up did not finish within %.0f s (--startup-timeout): still %s\n"
                     "tessera: aborting the job (all ranks)\n",
                     who_.c_str(), limit_s_, phase_.c_str());
        std::fflush(stderr);
        int up = 0, down = 0;
        MPI_Initialized(&up);
        MPI_Finalized(&down);
        // MPI_Abort from this thread; if it does not return the process within 5 s, _exit.
        if (up && !down) std::thread([] { MPI_Abort(MPI_COMM_WORLD, 1); }).detach();
        lock.unlock();
        std::this_thread::sleep_for(std::chrono::seconds(up && !down ? 5 : 0));
        std::_Exit(1);
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::chrono::steady_clock::time_point deadline_;
  double limit_s_ = 0;
  std::string who_;
  std::string phase_ = "in MPI_Init (waiting for every rank of the job to start: a host that is down or slow, or a "
                       "rank that never started; see the launcher's messages)";
  bool done_ = false;
  std::thread thread_;
};

constexpr int kCheckInTag = 0x7e55;
constexpr size_t kHostBytes = 64;

// Every rank sends its host name to rank 0 (point to point, so rank 0 knows exactly
// who is missing); rank 0 waits until `deadline`, then names the ranks that did not
// check in and aborts. Returns every rank's host on rank 0 (empty elsewhere).
std::vector<std::string> check_in(int rank, int world, const std::string& host,
                                  std::chrono::steady_clock::time_point deadline, double limit_s) {
  char mine[kHostBytes] = {};
  std::strncpy(mine, host.c_str(), kHostBytes - 1);
  if (rank != 0) {
    MPI_Send(mine, kHostBytes, MPI_CHAR, 0, kCheckInTag, MPI_COMM_WORLD);
    return {};
  }
  std::vector<char> hosts(kHostBytes * static_cast<size_t>(world), 0);
  std::memcpy(hosts.data(), mine, kHostBytes);
  std::vector<MPI_Request> reqs(static_cast<size_t>(world), MPI_REQUEST_NULL);
  for (int r = 1; r < world; ++r)
    MPI_Irecv(hosts.data() + kHostBytes * r, kHostBytes, MPI_CHAR, r, kCheckInTag, MPI_COMM_WORLD, &reqs[r]);
  std::vector<bool> arrived(static_cast<size_t>(world), false);
  arrived[0] = true;
  int left = world - 1;
  while (left > 0) {
    for (int r = 1; r < world; ++r) {
      if (arrived[r]) continue;
      int flag = 0;
      MPI_Test(&reqs[r], &flag, MPI_STATUS_IGNORE);
      if (flag) {
        arrived[r] = true;
        --left;
      }
    }
    if (left == 0) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string missing;
      int shown = 0;
      for (int r = 1; r < world; ++r) {
        if (arrived[r]) continue;
        if (shown++ < 32) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
      }
      if (left > 32) missing += ", ... (" + std::to_string(left) + " in all)";
      std::fprintf(stderr,
                   "\ntessera (rank 0 on %s): error: start-up did not finish within %.0f s (--startup-timeout): "
                   "%d of %d ranks did not check in: rank %s\ntessera: aborting the job (all ranks)\n",
                   host.c_str(), limit_s, left, world, missing.c_str());
      std::fflush(stderr);
      MPI_Abort(MPI_COMM_WORLD, 1);
      std::_Exit(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::vector<std::string> out;
  for (int r = 0; r < world; ++r) out.emplace_back(hosts.data() + kHostBytes * r);
  return out;
}

void print_layout_at_start(const ParallelConfig& p, const std::vector<std::string>& hosts) {
  std::vector<std::string> distinct;
  for (const std::string& h : hosts)
    if (std::find(distinct.begin(), distinct.end(), h) == distinct.end()) distinct.push_back(h);
  std::string text = "tessera: job of " + std::to_string(hosts.size()) + " ranks on " +
                     std::to_string(distinct.size()) + (distinct.size() == 1 ? " host" : " hosts") + ": tp " +
                     std::to_string(p.tp) + ", pp " + std::to_string(p.pp) + ", cp " + std::to_string(p.cp) +
                     ", ep " + std::to_string(p.ep) + "\n";
  const int n = static_cast<int>(hosts.size());
  for (int r = 0; r < n; ++r) {
    if (r == 64 && n > 72) {
      text += "tessera: ... (" + std::to_string(n - 64) + " more ranks)\n";
      break;
    }
    const GridCoords g = topology_coords_of(p, r);
    text += "tessera: rank " + std::to_string(r) + " on " + hosts[r] + ": pp " + std::to_string(g.pp) + " tp " +
            std::to_string(g.tp) + " cp " + std::to_string(g.cp) + " ep " + std::to_string((g.cp * p.tp + g.tp) % p.ep) + "\n";
  }
  std::fputs(text.c_str(), stderr);
  std::fflush(stderr);
}

// What every rank must agree on before it serves: the model and the split. Each rank
// computes it from its own command line, so ranks started with different flags (an
// MPMD launch gone wrong) are refused at hello instead of computing garbage.
uint64_t plan_fingerprint(const ClusterOptions& o) {
  std::string key = o.load.model_path + "|" + std::to_string(o.parallel.tp) + "|" + std::to_string(o.parallel.pp) +
                    "|" + std::to_string(o.parallel.cp) + "|" + std::to_string(o.parallel.ep) + "|" +
                    std::to_string(o.load.kv_block_size) + "|" + std::to_string(o.load.kv_blocks);
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ull;
  return h == 0 ? 1 : h;
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
  const auto started = std::chrono::steady_clock::now();
  const double limit_s = static_cast<double>(options.startup_timeout.count()) / 1000.0;
  char self[256] = {};
  gethostname(self, sizeof self - 1);
  StartupWatchdog watchdog(options.startup_timeout, std::string("a rank on ") + self);
  MpiContext mpi(argc, argv);
  const int rank = mpi.world_rank();
  const std::string host = mpi.host_name();
  // Rank 0 speaks first: the others wait 5 s longer before they give up themselves.
  if (rank != 0) watchdog.extend(std::chrono::seconds(5));
  watchdog.phase("checking in with rank 0 (rank 0 is not responding)",
                 "rank " + std::to_string(rank) + " on " + host);
  const std::vector<std::string> hosts =
      check_in(rank, mpi.world_size(), host, started + options.startup_timeout, limit_s);
  if (rank == 0) print_layout_at_start(options.parallel, hosts);
  watchdog.phase("setting up the communicators and control-plane endpoints (a rank stopped responding after "
                 "checking in)");
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
    so.plan_fingerprint = plan_fingerprint(options);
    rpc::WorkerServer server(executor, so);

    char mine[kEndpointBytes] = {};
    std::strncpy(mine, server.endpoint().c_str(), kEndpointBytes - 1);
    std::vector<char> all(kEndpointBytes * static_cast<size_t>(mpi.world_size()));
    comms.world->allgather(mine, all.data(), kEndpointBytes, CommType::kU8);
    watchdog.disarm();  // started: from here on, --step-timeout and the RPC calls bound every wait
    if (rank != 0) {
      server.wait();  // until the coordinator's shutdown
      return 0;
    }

    std::vector<std::string> endpoints;
    for (int r = 0; r < mpi.world_size(); ++r) endpoints.emplace_back(all.data() + r * kEndpointBytes);
    rpc::CoordinatorOptions co;
    co.secret = secret;
    co.plan_fingerprint = plan_fingerprint(options);
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
                                              : worker_kv_blocks(config.max_seq_len, load.kv_block_size,
                                                                 options.parallel.cp);
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
