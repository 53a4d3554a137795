#include "rpc/worker_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <future>
#include <type_traits>

#include <capnp/rpc-twoparty.h>
#include <glog/logging.h>
#include <kj/async-io.h>

#include "common/error.h"
#include "rpc/compute_queue.h"
#include "rpc/protocol.h"
#include "rpc/remote_error.h"
#include "rpc/step_codec.h"
#include "schemas/worker.capnp.h"

namespace tessera::rpc {

using Clock = std::chrono::steady_clock;

struct WorkerServer::Core {
  Core(StepExecutor& e, WorkerServerOptions o) : executor(e), options(std::move(o)) {}

  StepExecutor& executor;  // called on the compute thread only
  const WorkerServerOptions options;
  ComputeQueue compute;

  std::mutex stop_mu;
  bool stop_requested = false;  // guarded by stop_mu
  // Created on (and destroyed by) the loop thread; fulfilled by stop() from any thread.
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> stop_fulfiller;  // guarded by stop_mu
  // Loop thread only: fulfilled when a shutdown call has been answered.
  kj::Own<kj::PromiseFulfiller<void>> shutdown_fulfiller;

  WorkerStatsValue identify(WorkerStatsValue s) const {
    // The server's identity is the one in its options, whatever the executor says.
    s.rank = options.rank;
    s.host = options.host;
    return s;
  }
};

namespace {

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Runs fn() on the compute thread; the returned promise (owned by the calling event
// loop) is fulfilled cross-thread with its value, or rejected with its error as a
// tagged kj::Exception. If the promise is gone by then (the call was cancelled, the
// connection dropped) the job still runs: every rank must see the same sequence of
// steps, and fulfilling a dropped promise is a no-op.
template <typename T, typename Fn>
kj::Promise<T> on_compute(ComputeQueue& q, Fn fn) {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<T>();
  // std::function needs a copyable job; the fulfiller is shared, used once.
  auto fulfiller = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<T>>>(kj::mv(paf.fulfiller));
  q.post([fulfiller, fn = std::move(fn)]() mutable {
    try {
      if constexpr (std::is_void_v<T>) {
        fn();
        (*fulfiller)->fulfill();
      } else {
        (*fulfiller)->fulfill(fn());
      }
    } catch (const std::exception& e) {
      (*fulfiller)->reject(to_kj_exception(e));
    }
  });
  return kj::mv(paf.promise);
}

// Runs an encoding step, turning a tessera::Error into a tagged kj::Exception.
template <typename Fn>
void encode_or_throw(Fn fn) {
  try {
    fn();
  } catch (const kj::Exception&) {
    throw;
  } catch (const std::exception& e) {
    kj::throwFatalException(to_kj_exception(e));
  }
}

struct StepDone {
  StepResult result;
  StepTimings timings;
};

class WorkerImpl final : public schema::Worker::Server {
 public:
  explicit WorkerImpl(WorkerServer::Core& core) : core_(core) {}

 protected:
  kj::Promise<void> loadShard(LoadShardContext context) override {
    LoadShardRequest request;
    try {
      request = from_capnp(context.getParams().getRequest());
    } catch (const std::exception& e) {
      return to_kj_exception(e);
    }
    WorkerServer::Core* core = &core_;
    return on_compute<WorkerStatsValue>(core->compute,
                                        [core, request] {
                                          core->executor.load_shard(request);
                                          return core->identify(core->executor.stats());
                                        })
        .then([context](WorkerStatsValue s) mutable {
          encode_or_throw([&] { to_capnp(s, context.getResults().initStats()); });
        });
  }

  kj::Promise<void> runStep(RunStepContext context) override {
    StepPlan plan;
    try {
      plan = from_capnp(context.getParams().getPlan());
    } catch (const std::exception& e) {
      return to_kj_exception(e);
    }
    context.releaseParams();  // the plan is decoded: free the request message early
    WorkerServer::Core* core = &core_;
    const Clock::time_point queued = Clock::now();
    return on_compute<StepDone>(core->compute,
                                [core, plan = std::move(plan), queued] {
                                  const Clock::time_point start = Clock::now();
                                  StepDone done;
                                  done.result = core->executor.run_step(plan);
                                  done.timings.queue_seconds = seconds_between(queued, start);
                                  done.timings.compute_seconds = seconds_between(start, Clock::now());
                                  done.timings.collective_seconds = core->executor.take_collective_seconds();
                                  return done;
                                })
        .then([context](StepDone done) mutable {
          encode_or_throw([&] { to_capnp(done.result, done.timings, context.getResults().initResult()); });
        });
  }

  kj::Promise<void> release(ReleaseContext context) override {
    std::vector<uint64_t> ids;
    for (uint64_t id : context.getParams().getSeqIds()) ids.push_back(id);
    WorkerServer::Core* core = &core_;
    return on_compute<void>(core->compute, [core, ids = std::move(ids)] { core->executor.release(ids); });
  }

  kj::Promise<void> stats(StatsContext context) override {
    WorkerServer::Core* core = &core_;
    return on_compute<WorkerStatsValue>(core->compute, [core] { return core->identify(core->executor.stats()); })
        .then([context](WorkerStatsValue s) mutable {
          encode_or_throw([&] { to_capnp(s, context.getResults().initStats()); });
        });
  }

  kj::Promise<void> shutdown(ShutdownContext context) override {
    WorkerServer::Core* core = &core_;
    // A no-op job: it runs after every call that arrived before, so the answer means
    // "all earlier work is done".
    return on_compute<void>(core->compute, [] {}).then([core] {
      LOG(INFO) << "worker rank " << core->options.rank << ": shutdown requested";
      if (core->shutdown_fulfiller && core->shutdown_fulfiller->isWaiting()) core->shutdown_fulfiller->fulfill();
    });
  }

 private:
  WorkerServer::Core& core_;  // outlives the event loop and so every RPC object
};

class GateImpl final : public schema::Gate::Server {
 public:
  explicit GateImpl(WorkerServer::Core& core) : core_(core) {}

 protected:
  kj::Promise<void> hello(HelloContext context) override {
    auto params = context.getParams();
    const uint32_t theirs = params.getProtocolVersion();
    // Versions first: a peer of another version may not even lay out the secret the
    // same way, and "upgrade one side" is the more useful answer.
    if (theirs != kProtocolVersion) {
      LOG(WARNING) << "worker rank " << core_.options.rank << ": refused a hello speaking protocol version "
                   << theirs;
      return to_kj_exception(ErrorKind::kUnsupported,
                             detail::concat("protocol version mismatch: the coordinator speaks version ", theirs,
                                            ", this worker speaks version ", kProtocolVersion));
    }
    auto secret = params.getSecret();
    if (!secret_equal(std::span<const uint8_t>(secret.begin(), secret.size()), core_.options.secret)) {
      LOG(WARNING) << "worker rank " << core_.options.rank << ": refused a hello with a wrong job secret";
      return to_kj_exception(ErrorKind::kInvalidInput, "hello refused: wrong job secret");
    }
    const uint64_t fp = params.getPlanFingerprint();
    if (core_.options.plan_fingerprint != 0 && fp != 0 && fp != core_.options.plan_fingerprint) {
      return to_kj_exception(ErrorKind::kInvalidInput,
                             detail::concat("hello refused: plan fingerprint ", fp, " differs from this worker's ",
                                            core_.options.plan_fingerprint));
    }
    auto results = context.getResults();
    results.setWorker(kj::heap<WorkerImpl>(core_));
    results.setRank(core_.options.rank);
    results.setHost(core_.options.host);
    results.setProtocolVersion(kProtocolVersion);
    return kj::READY_NOW;
  }

 private:
  WorkerServer::Core& core_;
};

std::string format_sockaddr(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
    return detail::concat(buf, ":", ntohs(a.sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
    inet_ntop(AF_INET6, &a.sin6_addr, buf, sizeof buf);
    return detail::concat("[", buf, "]:", ntohs(a.sin6_port));
  }
  return "?";
}

}  // namespace

WorkerServer::WorkerServer(StepExecutor& executor, WorkerServerOptions options) {
  TESSERA_REQUIRE(!options.bind_host.empty(), ErrorKind::kInvalidInput,
                  "worker server: no bind address given (pass the host's cluster address, or 127.0.0.1)");
  core_ = std::make_unique<Core>(executor, std::move(options));
  std::promise<void> ready;
  std::future<void> ready_future = ready.get_future();
  loop_thread_ = std::thread([this, &ready] {
    bool ready_sent = false;  // after that, `ready` (the constructor's local) is gone
    try {
      auto io = kj::setupAsyncIo();
      const std::string where = detail::concat(core_->options.bind_host, ":", core_->options.port);
      kj::Own<kj::ConnectionReceiver> listener;
      KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] {
                    auto addr = io.provider->getNetwork()
                                    .parseAddress(core_->options.bind_host.c_str(), core_->options.port)
                                    .wait(io.waitScope);
                    listener = addr->listen();
                  })) {
        TESSERA_FAIL(ErrorKind::kResource, "worker server: cannot listen on ", where, ": ",
                     e->getDescription().cStr());
      }
      port_ = static_cast<uint16_t>(listener->getPort());
      sockaddr_storage ss{};
      uint len = sizeof ss;
      listener->getsockname(reinterpret_cast<sockaddr*>(&ss), &len);
      bound_address_ = format_sockaddr(ss);

      capnp::TwoPartyServer server(kj::heap<GateImpl>(*core_));
      kj::Promise<void> listening = server.listen(*listener);
      // Per the recipe: cross-thread fulfillers are made inside the loop's own thread.
      auto stop = kj::newPromiseAndCrossThreadFulfiller<void>();
      auto shut = kj::newPromiseAndFulfiller<void>();
      core_->shutdown_fulfiller = kj::mv(shut.fulfiller);
      {
        std::lock_guard<std::mutex> lock(core_->stop_mu);
        core_->stop_fulfiller = kj::mv(stop.fulfiller);
        if (core_->stop_requested) core_->stop_fulfiller->fulfill();
      }
      ready_sent = true;
      ready.set_value();

      kj::Timer& timer = io.provider->getTimer();
      const auto grace = core_->options.shutdown_grace.count() * kj::MILLISECONDS;
      KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] {
                    stop.promise
                        .exclusiveJoin(kj::mv(shut.promise).then([&timer, grace] { return timer.afterDelay(grace); }))
                        .exclusiveJoin(kj::mv(listening))
                        .wait(io.waitScope);
                  })) {
        LOG(ERROR) << "worker rank " << core_->options.rank << ": control plane stopped: " << e->getDescription().cStr();
      }
      {
        std::lock_guard<std::mutex> lock(core_->stop_mu);
        core_->stop_fulfiller = nullptr;
      }
      core_->shutdown_fulfiller = nullptr;
      // Leaving the scope destroys the server (dropping its connections), the
      // listener, then the event loop, in that order.
    } catch (const std::exception& e) {
      if (!ready_sent) ready.set_exception(std::current_exception());
      else LOG(ERROR) << "worker rank " << core_->options.rank << ": control plane: " << e.what();
    } catch (const kj::Exception& e) {
      if (!ready_sent) ready.set_exception(std::make_exception_ptr(Error(ErrorKind::kResource, e.getDescription().cStr())));
      else LOG(ERROR) << "worker rank " << core_->options.rank << ": control plane: " << e.getDescription().cStr();
    }
    core_->compute.stop();
    {
      std::lock_guard<std::mutex> lock(mu_);
      finished_ = true;
    }
    cv_.notify_all();
  });
  try {
    ready_future.get();
  } catch (...) {
    loop_thread_.join();
    throw;
  }
  LOG(INFO) << "worker rank " << core_->options.rank << ": control plane listening on " << bound_address_;
}

WorkerServer::~WorkerServer() { stop(); }

std::string WorkerServer::endpoint() const { return detail::concat(core_->options.bind_host, ":", port_); }

void WorkerServer::wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return finished_; });
}

bool WorkerServer::wait_for(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return finished_; });
}

void WorkerServer::stop() {
  {
    std::lock_guard<std::mutex> lock(core_->stop_mu);
    core_->stop_requested = true;
    if (core_->stop_fulfiller && core_->stop_fulfiller->isWaiting()) core_->stop_fulfiller->fulfill();
  }
  if (loop_thread_.joinable()) loop_thread_.join();
}

}  // namespace tessera::rpc
