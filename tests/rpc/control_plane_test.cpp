// WorkerServer + CoordinatorClient in one process over 127.0.0.1: the handshake, steps
// on several workers, errors, timeouts, disconnects and shutdown.
#include <capnp/ez-rpc.h>
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "common/error.h"
#include "rpc/coordinator_client.h"
#include "rpc/protocol.h"
#include "rpc/worker_server.h"
#include "schemas/worker.capnp.h"
#include "tests/rpc/fake_executor.h"

namespace tessera::rpc {
namespace {

using namespace std::chrono_literals;
using testing::FakeExecutor;
using testing::kFailingStep;

// N fake workers, each with its own server (two threads each), sharing one secret.
struct Cluster {
  explicit Cluster(int n, std::chrono::milliseconds step_delay = {}) : secret(make_secret()) {
    for (int r = 0; r < n; ++r) {
      executors.push_back(std::make_unique<FakeExecutor>(r, step_delay));
      WorkerServerOptions o;
      o.bind_host = "127.0.0.1";
      o.secret = secret;
      o.rank = r;
      o.host = "host" + std::to_string(r);
      servers.push_back(std::make_unique<WorkerServer>(*executors.back(), o));
    }
  }
  ~Cluster() {
    for (auto& e : executors) e->unblock();  // a blocked executor would hold stop()
    servers.clear();
  }
  std::vector<std::string> endpoints() const {
    std::vector<std::string> v;
    for (const auto& s : servers) v.push_back(s->endpoint());
    return v;
  }
  CoordinatorOptions options(std::chrono::milliseconds timeout = 5s) const {
    CoordinatorOptions o;
    o.secret = secret;
    o.call_timeout = timeout;
    o.connect_timeout = 5s;
    return o;
  }

  Secret secret;
  std::vector<std::unique_ptr<FakeExecutor>> executors;
  std::vector<std::unique_ptr<WorkerServer>> servers;
};

StepPlan make_plan(uint64_t step_id, int n_seqs = 3) {
  StepPlan p;
  p.step_id = step_id;
  for (int i = 0; i < n_seqs; ++i) {
    SequenceStep s;
    s.seq_id = 100 + i;
    s.tokens = {static_cast<int32_t>(10 * i), static_cast<int32_t>(10 * i + 1 + step_id)};
    s.n_outputs = i == 0 ? 2 : 1;
    s.return_logits = i == 1;
    s.rng_state = step_id;
    p.sequences.push_back(s);
  }
  return p;
}

void expect_echo(const StepPlan& plan, const WorkerStep& w) {
  ASSERT_EQ(w.result.step_id, plan.step_id);
  ASSERT_EQ(w.result.outputs.size(), plan.sequences.size());
  for (size_t i = 0; i < plan.sequences.size(); ++i) {
    const SequenceStep& s = plan.sequences[i];
    const SequenceOutput& o = w.result.outputs[i];
    EXPECT_EQ(o.seq_id, s.seq_id);
    EXPECT_EQ(o.rng_state, s.rng_state + 1);
    ASSERT_EQ(o.samples.size(), static_cast<size_t>(s.n_outputs));
    EXPECT_EQ(o.samples.back().token, s.tokens.back() + 1);
    EXPECT_EQ(o.logits.size(), s.return_logits ? 3u * s.n_outputs : 0u);
  }
}

// The error `fn` throws (fails the test if none).
template <typename Fn>
Error error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no tessera::Error thrown";
  return Error(ErrorKind::kInternal, "none");
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(ControlPlane, HelloWithTheSecretGivesTheWorkers) {
  Cluster c(2);
  CoordinatorClient client(c.endpoints(), c.options());
  ASSERT_EQ(client.workers().size(), 2u);
  EXPECT_EQ(client.workers()[1].rank, 1);
  EXPECT_EQ(client.workers()[1].host, "host1");
  EXPECT_EQ(client.workers()[1].endpoint, c.servers[1]->endpoint());
  const auto stats = client.stats();
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[1].rank, 1);  // the server's identity, not the executor's -1
  EXPECT_EQ(stats[1].host, "host1");
  EXPECT_EQ(stats[1].weight_bytes, 1001u);
}

TEST(ControlPlane, WrongSecretIsRefused) {
  Cluster c(1);
  CoordinatorOptions o = c.options();
  o.secret[0] ^= 1;
  const Error e = error_of([&] { CoordinatorClient client(c.endpoints(), o); });
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
  EXPECT_TRUE(contains(e.what(), "wrong job secret")) << e.what();
  EXPECT_TRUE(contains(e.what(), c.servers[0]->endpoint())) << e.what();
}

TEST(ControlPlane, WrongSecretNeverYieldsAWorkerCapability) {
  Cluster c(1);
  capnp::EzRpcClient raw(c.servers[0]->endpoint());
  auto& ws = raw.getWaitScope();
  auto gate = raw.getMain<schema::Gate>();
  auto req = gate.helloRequest();
  req.setProtocolVersion(kProtocolVersion);
  req.setSecret(kj::heapArray<kj::byte>(kSecretBytes));  // zeros
  auto promise = req.send();
  // Pipelining on the refused answer's worker cannot reach the executor either.
  auto stats = promise.getWorker().statsRequest().send();
  EXPECT_ANY_THROW(promise.wait(ws));
  EXPECT_ANY_THROW(stats.wait(ws));
  EXPECT_EQ(c.executors[0]->stats_calls(), 0);
}

TEST(ControlPlane, VersionMismatchNamesBothVersions) {
  Cluster c(1);
  CoordinatorOptions o = c.options();
  o.protocol_version = kProtocolVersion + 1;
  const Error e = error_of([&] { CoordinatorClient client(c.endpoints(), o); });
  EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
  EXPECT_TRUE(contains(e.what(), "version " + std::to_string(kProtocolVersion + 1))) << e.what();
  EXPECT_TRUE(contains(e.what(), "version " + std::to_string(kProtocolVersion))) << e.what();
}

TEST(ControlPlane, UnreachableEndpointIsDisconnected) {
  Cluster c(1);
  const std::string ep = c.servers[0]->endpoint();
  c.servers.clear();  // nothing listens there any more
  const Error e = error_of([&] { CoordinatorClient client({ep}, c.options()); });
  EXPECT_EQ(e.kind(), ErrorKind::kDisconnected);
  EXPECT_TRUE(contains(e.what(), ep)) << e.what();
}

TEST(ControlPlane, StepsOnThreeWorkersQueueInArrivalOrder) {
  Cluster c(3, 20ms);  // each step takes 20 ms: later ones queue behind it
  CoordinatorClient client(c.endpoints(), c.options());
  std::vector<StepPlan> plans;
  std::vector<std::future<std::vector<WorkerStep>>> futures;
  for (uint64_t id = 1; id <= 5; ++id) {
    plans.push_back(make_plan(id));
    futures.push_back(client.run_step_async(plans.back()));
  }
  const uint64_t done[] = {7, 8};
  client.release(done);  // after the five steps on every worker
  for (size_t k = 0; k < futures.size(); ++k) {
    const std::vector<WorkerStep> results = futures[k].get();
    ASSERT_EQ(results.size(), 3u);
    for (int r = 0; r < 3; ++r) {
      EXPECT_EQ(results[r].rank, r);
      expect_echo(plans[k], results[r]);
      EXPECT_GE(results[r].timings.compute_seconds, 0.015);
      EXPECT_EQ(results[r].timings.collective_seconds, 0.25);
      EXPECT_DOUBLE_EQ(results[r].result.forward_seconds, 0.001 * r);
    }
    if (k == 4) {  // waited behind the others
      EXPECT_GT(results[0].timings.queue_seconds, 0.02);
    }
  }
  for (auto& e : c.executors) {
    EXPECT_EQ(e->order(), (std::vector<uint64_t>{1, 2, 3, 4, 5, 0}));
    EXPECT_EQ(e->released(), (std::vector<uint64_t>{7, 8}));
    EXPECT_EQ(e->max_concurrent(), 1);
  }
  EXPECT_EQ(client.stats()[2].steps_run, 5u);
}

TEST(ControlPlane, LoadShardReachesEveryWorker) {
  Cluster c(2);
  CoordinatorClient client(c.endpoints(), c.options());
  const auto stats = client.load_shard({"/models/m", {2, 1, 1, 1}, 64, 16, 1});
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].kv_blocks, 64);
  EXPECT_EQ(stats[1].rank, 1);
  const Error e = error_of([&] { client.load_shard({"missing", {}, 1, 16, 0}); });
  EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
  EXPECT_TRUE(contains(e.what(), "no checkpoint at missing")) << e.what();
}

TEST(ControlPlane, ExecutorErrorComesBackWithItsMessageAndKind) {
  Cluster c(2);
  CoordinatorClient client(c.endpoints(), c.options());
  const Error e = error_of([&] { client.run_step(make_plan(kFailingStep)); });
  EXPECT_EQ(e.kind(), ErrorKind::kResource);
  EXPECT_TRUE(contains(e.what(), "kv pool exhausted at block 7")) << e.what();
  EXPECT_TRUE(contains(e.what(), "rank ")) << e.what();
  // The worker stays usable: an executor error is an answer, not a lost peer.
  EXPECT_EQ(client.run_step(make_plan(2)).size(), 2u);
}

TEST(ControlPlane, InvalidPlanIsRejectedByTheWorkerNamingTheField) {
  Cluster c(1);
  CoordinatorClient client(c.endpoints(), c.options());
  StepPlan p = make_plan(3);
  p.sequences[2].n_outputs = 5;
  const Error e = error_of([&] { client.run_step(p); });
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
  EXPECT_TRUE(contains(e.what(), "StepPlan.sequences[2].nOutputs = 5")) << e.what();
  EXPECT_TRUE(contains(e.what(), "rank 0 (host0")) << e.what();
  EXPECT_TRUE(c.executors[0]->order().empty());  // never reached the executor
}

TEST(ControlPlane, SilentWorkerTimesOutNamingRankAndHost) {
  Cluster c(3);
  c.executors[2]->block();
  CoordinatorClient client(c.endpoints(), c.options(300ms));
  const auto start = std::chrono::steady_clock::now();
  const Error e = error_of([&] { client.run_step(make_plan(1)); });
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(e.kind(), ErrorKind::kDisconnected);
  EXPECT_TRUE(contains(e.what(), "rank 2 (host2")) << e.what();
  EXPECT_TRUE(contains(e.what(), "did not answer runStep within 0.3 s")) << e.what();
  EXPECT_GE(waited, 0.25);
  EXPECT_LT(waited, 3.0);
  // Its state is unknown now: later calls fail at once, naming it.
  const Error again = error_of([&] { client.stats(); });
  EXPECT_EQ(again.kind(), ErrorKind::kDisconnected);
  EXPECT_TRUE(contains(again.what(), "rank 2 (host2")) << again.what();
}

// A hung rank's TP/PP peers wait for it in a collective and do not answer either: the
// timeout names every rank still in flight (an upper bound holding the hung one), not
// just whichever deadline fired first.
TEST(ControlPlane, TimeoutNamesEveryRankThatDidNotAnswer) {
  Cluster c(4);
  c.executors[1]->block();
  c.executors[3]->block();
  CoordinatorClient client(c.endpoints(), c.options(300ms));
  const Error e = error_of([&] { client.run_step(make_plan(1)); });
  EXPECT_EQ(e.kind(), ErrorKind::kDisconnected);
  EXPECT_TRUE(contains(e.what(), "rank 1 (host1")) << e.what();
  EXPECT_TRUE(contains(e.what(), "rank 3 (host3")) << e.what();
  EXPECT_FALSE(contains(e.what(), "rank 0 (host0")) << e.what();
  EXPECT_FALSE(contains(e.what(), "rank 2 (host2")) << e.what();
  EXPECT_TRUE(contains(e.what(), "did not answer runStep within 0.3 s (2 of 4 ranks;")) << e.what();
  EXPECT_TRUE(contains(e.what(), "blocked in a collective with a hung peer")) << e.what();
  // Later calls fail at once, naming a rank that did not answer.
  const Error again = error_of([&] { client.stats(); });
  EXPECT_TRUE(contains(again.what(), "rank 1 (host1") || contains(again.what(), "rank 3 (host3")) << again.what();
  EXPECT_TRUE(contains(again.what(), "failed earlier: did not answer runStep")) << again.what();
}

TEST(ControlPlane, ConnectionClosedMidCallFailsQuickly) {
  Cluster c(2);
  c.executors[1]->block();
  CoordinatorClient client(c.endpoints(), c.options(30s));
  auto future = client.run_step_async(make_plan(1));
  c.executors[1]->wait_until_blocked();
  const auto start = std::chrono::steady_clock::now();
  // stop() closes the connections first, then waits for the blocked executor call.
  std::thread stopper([&] { c.servers[1]->stop(); });
  const Error e = error_of([&] { future.get(); });
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  c.executors[1]->unblock();
  stopper.join();
  EXPECT_EQ(e.kind(), ErrorKind::kDisconnected);
  EXPECT_TRUE(contains(e.what(), "rank 1 (host1")) << e.what();
  EXPECT_LT(waited, 3.0);
}

TEST(ControlPlane, ShutdownStopsTheWorkers) {
  Cluster c(2);
  CoordinatorClient client(c.endpoints(), c.options());
  client.run_step(make_plan(1));
  client.shutdown();
  for (auto& s : c.servers) EXPECT_TRUE(s->wait_for(5s));
  const Error e = error_of([&] { client.stats(); });
  EXPECT_EQ(e.kind(), ErrorKind::kDisconnected);
}

// The local address of the listening TCP socket on `port`, from /proc/net/tcp
// ("0100007F" is 127.0.0.1 there), or "" if none.
std::string listening_address_hex(uint16_t port) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // header
  char want[8];
  std::snprintf(want, sizeof want, "%04X", port);
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    if (state == "0A" && local.substr(local.find(':') + 1) == want) return local.substr(0, local.find(':'));
  }
  return "";
}

TEST(ControlPlane, BindsOnlyTheGivenAddress) {
  Cluster c(1);
  const uint16_t port = c.servers[0]->port();
  EXPECT_EQ(c.servers[0]->bound_address(), "127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(listening_address_hex(port), "0100007F");
  FakeExecutor e(0);
  const Error none = error_of([&] { WorkerServer s(e, WorkerServerOptions{}); });
  EXPECT_EQ(none.kind(), ErrorKind::kInvalidInput);
  WorkerServerOptions bad;
  bad.bind_host = "256.1.1.1";
  EXPECT_THROW(WorkerServer(e, bad), Error);
}

}  // namespace
}  // namespace tessera::rpc
