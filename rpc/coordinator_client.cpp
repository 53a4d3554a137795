#include "rpc/coordinator_client.h"

#include <algorithm>
#include <optional>
#include <type_traits>

#include <capnp/rpc-twoparty.h>
#include <glog/logging.h>
#include <kj/async-io.h>

#include "common/error.h"
#include "rpc/protocol.h"
#include "rpc/remote_error.h"
#include "rpc/step_codec.h"
#include "schemas/worker.capnp.h"

namespace tessera::rpc {

using Clock = std::chrono::steady_clock;
using detail::concat;

namespace {

// One worker's connection; touched only on the loop thread.
struct Conn {
  std::string endpoint;
  std::string who;  // "worker at ENDPOINT", then "rank R (HOST at ENDPOINT)" after hello
  int32_t rank = -1;
  kj::Own<kj::AsyncIoStream> stream;         // outlives `client`, declared first
  kj::Own<capnp::TwoPartyClient> client;
  schema::Worker::Client worker = nullptr;   // set by a successful hello only
  std::optional<std::string> failed;         // why later calls fail at once
};

// Results of one call on every worker, in endpoint order. Lives on the loop thread
// (shared by the per-worker continuations); the std::promise is the cross-thread part.
template <typename T>
struct Gather {
  using Slot = std::conditional_t<std::is_void_v<T>, bool, T>;
  using Out = std::conditional_t<std::is_void_v<T>, void, std::vector<T>>;

  explicit Gather(size_t n) : slots(n), settled(n, false), remaining(n) {}
  ~Gather() {
    // The loop is closing with this call unfinished: the caller must not hang.
    if (!done) fail(Error(ErrorKind::kDisconnected, "control plane: the coordinator client closed during the call"));
  }

  void set(size_t i, Slot v) {
    if (done) return;
    slots[i] = std::move(v);
    settled[i] = true;
    if (--remaining == 0) finish();
  }
  void skip(size_t i) {  // a worker whose failure is acceptable (shutdown)
    if (done) return;
    settled[i] = true;
    if (--remaining == 0) finish();
  }
  void fail(const Error& e) {
    if (done) return;
    done = true;
    promise.set_exception(std::make_exception_ptr(e));
  }
  void finish() {
    done = true;
    if constexpr (std::is_void_v<T>) {
      promise.set_value();
    } else {
      std::vector<T> out;
      out.reserve(slots.size());
      for (auto& s : slots) out.push_back(std::move(*s));
      promise.set_value(std::move(out));
    }
  }

  std::promise<Out> promise;
  std::vector<std::optional<Slot>> slots;
  std::vector<bool> settled;  // answered (or skipped): the others are still in flight
  size_t remaining;
  bool done = false;
};

class LogErrors final : public kj::TaskSet::ErrorHandler {
 public:
  void taskFailed(kj::Exception&& e) override { LOG(ERROR) << "control plane: " << e.getDescription().cStr(); }
};

// Runs an encode/decode step inside a kj continuation so that a tessera::Error keeps
// its kind across kj (which would otherwise wrap it as an untagged std::exception).
template <typename Fn>
auto keep_kind(Fn fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const kj::Exception&) {
    throw;
  } catch (const std::exception& e) {
    kj::throwFatalException(to_kj_exception(e));
  }
}

}  // namespace

struct CoordinatorClient::Loop {
  CoordinatorOptions options;
  std::thread thread;
  kj::Own<const kj::Executor> executor;                       // the loop thread's, any thread may use it
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> stop;        // made on the loop thread

  // Loop thread only.
  kj::Timer* timer = nullptr;
  kj::Network* network = nullptr;
  std::vector<std::unique_ptr<Conn>> conns;
  LogErrors log_errors;
  kj::Own<kj::TaskSet> tasks;  // before `conns` in teardown: continuations refer to conns

  explicit Loop(CoordinatorOptions o) : options(std::move(o)) {
    std::promise<void> ready;
    std::future<void> ready_future = ready.get_future();
    thread = std::thread([this, &ready] {
      auto io = kj::setupAsyncIo();
      timer = &io.provider->getTimer();
      network = &io.provider->getNetwork();
      tasks = kj::heap<kj::TaskSet>(log_errors);
      executor = kj::getCurrentThreadExecutor().addRef();
      auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
      stop = kj::mv(paf.fulfiller);
      ready.set_value();  // `ready` is the constructor's: not touched after this
      paf.promise.wait(io.waitScope);
      tasks = nullptr;  // unfinished calls fail their futures (Gather's destructor)
      conns.clear();    // then the connections drop
    });
    ready_future.get();
  }

  ~Loop() {
    stop->fulfill();
    thread.join();
    stop = nullptr;  // after the join: fulfill() has certainly returned
  }

  kj::Promise<void> deadline(std::chrono::milliseconds timeout, const char* method) {
    return timer->afterDelay(timeout.count() * kj::MILLISECONDS).then([timeout, method]() -> kj::Promise<void> {
      return to_kj_exception(ErrorKind::kDisconnected,
                             concat("did not answer ", method, " within ", timeout.count() / 1000.0, " s"));
    });
  }

  // A call's deadline passed: the error names every worker whose call has not returned.
  // A rank blocked in a collective (TP all-reduce, PP send/recv) with a hung peer does
  // not answer either, so the list is an upper bound that contains the hung rank(s).
  Error timed_out(const std::vector<bool>& settled, const char* method, std::chrono::milliseconds timeout) const {
    std::string who;
    size_t n = 0;
    for (size_t j = 0; j < conns.size() && j < settled.size(); ++j) {
      if (settled[j]) continue;
      who += (n++ ? ", " : "") + conns[j]->who;
    }
    std::string msg = concat(who, ": did not answer ", method, " within ", timeout.count() / 1000.0, " s");
    if (n > 1)
      msg += concat(" (", n, " of ", conns.size(),
                    " ranks; a rank blocked in a collective with a hung peer times out too, so the hung rank is "
                    "among these, not necessarily all of them)");
    return Error(ErrorKind::kDisconnected, msg);
  }

  // Loop thread: starts make_call(conn) -> kj::Promise<T> on every worker at once,
  // each under `timeout`. A worker marked failed fails the call at once.
  template <typename T, typename MakeCall>
  std::future<typename Gather<T>::Out> call_all(const char* method, std::chrono::milliseconds timeout,
                                                MakeCall make_call, bool disconnect_ok = false) {
    auto g = std::make_shared<Gather<T>>(conns.size());
    auto future = g->promise.get_future();
    if (conns.empty()) g->finish();
    for (size_t i = 0; i < conns.size() && !g->done; ++i) {
      Conn& c = *conns[i];
      if (c.failed) {
        if (disconnect_ok) g->skip(i);
        else g->fail(Error(ErrorKind::kDisconnected, concat(c.who, ": ", *c.failed)));
        continue;
      }
      kj::Promise<T> call = nullptr;
      try {
        call = make_call(c);
      } catch (const std::exception& e) {  // the request did not encode
        g->fail(from_kj_exception(to_kj_exception(e), c.who));
        continue;
      }
      // exclusiveJoin cancels the loser: the timeout cancels the call, and vice versa.
      // The first deadline to fire fails the call naming every worker still in flight
      // (all deadlines started together, so theirs are up too); each worker's own
      // deadline then marks it failed below.
      auto timed = call.exclusiveJoin(deadline(timeout, method).then(
          []() -> kj::Promise<T> {
            KJ_UNREACHABLE;  // deadline() only ever rejects
          },
          [this, g, method, timeout, disconnect_ok](kj::Exception&& e) -> kj::Promise<T> {
            if (!disconnect_ok && !g->done) g->fail(timed_out(g->settled, method, timeout));
            return kj::mv(e);
          }));
      auto on_value = [g, i](auto&&... v) {
        if constexpr (std::is_void_v<T>) g->set(i, true);
        else g->set(i, std::move(v)...);
      };
      tasks->add(timed.then(kj::mv(on_value), [g, i, &c, disconnect_ok](kj::Exception&& e) {
        Error err = from_kj_exception(e, c.who);
        if (err.kind() == ErrorKind::kDisconnected) {
          // Dropped or silent: its state is unknown from now on.
          if (!c.failed) {
            std::string why = err.what();  // "<who>: <reason>": keep the reason only
            if (why.rfind(c.who + ": ", 0) == 0) why.erase(0, c.who.size() + 2);
            c.failed = "failed earlier: " + why;
          }
          if (disconnect_ok) return g->skip(i);
        }
        g->fail(err);
      }));
    }
    return future;
  }

  // Loop thread: connect and hello on every endpoint.
  std::future<std::vector<WorkerInfo>> connect_all(const std::vector<std::string>& endpoints) {
    for (const std::string& ep : endpoints) {
      auto c = std::make_unique<Conn>();
      c->endpoint = ep;
      c->who = concat("worker at ", ep);
      conns.push_back(std::move(c));
    }
    return call_all<WorkerInfo>("hello", options.connect_timeout, [this](Conn& c) {
      return network->parseAddress(c.endpoint)
          .then([](kj::Own<kj::NetworkAddress> addr) { return addr->connect(); })
          .then([this, &c](kj::Own<kj::AsyncIoStream> stream) {
            c.stream = kj::mv(stream);
            c.client = kj::heap<capnp::TwoPartyClient>(*c.stream);
            auto req = c.client->bootstrap().castAs<schema::Gate>().helloRequest();
            req.setProtocolVersion(options.protocol_version != 0 ? options.protocol_version : kProtocolVersion);
            req.setSecret(kj::arrayPtr(options.secret.data(), options.secret.size()));
            req.setPlanFingerprint(options.plan_fingerprint);
            return req.send();
          })
          .then([&c](capnp::Response<schema::Gate::HelloResults> r) {
            c.worker = r.getWorker();
            c.rank = r.getRank();
            WorkerInfo info{c.endpoint, c.rank, r.getHost()};
            c.who = concat("rank ", info.rank, " (", info.host, " at ", c.endpoint, ")");
            return info;
          });
    });
  }
};

CoordinatorClient::CoordinatorClient(std::vector<std::string> endpoints, CoordinatorOptions options)
    : loop_(std::make_unique<Loop>(std::move(options))) {
  auto future = loop_->executor->executeSync([&] { return loop_->connect_all(endpoints); });
  workers_ = future.get();
  // Two endpoints answering as one rank: a wrong endpoint list, caught before any step.
  for (size_t i = 0; i < workers_.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      TESSERA_REQUIRE(workers_[i].rank != workers_[j].rank, ErrorKind::kInvalidInput, "workers at ",
                      workers_[j].endpoint, " and ", workers_[i].endpoint, " both report rank ", workers_[i].rank);
  loop_->executor->executeSync([&] {
    for (auto& c : loop_->conns) {
      Conn* conn = c.get();
      loop_->tasks->add(conn->client->onDisconnect().then([conn] {
        if (!conn->failed) conn->failed = "the connection was closed";
      }));
    }
  });
}

CoordinatorClient::~CoordinatorClient() = default;

std::future<std::vector<WorkerStatsValue>> CoordinatorClient::load_shard_async(const LoadShardRequest& request) {
  Loop& l = *loop_;
  return l.executor->executeSync([&] {
    return l.call_all<WorkerStatsValue>("loadShard", l.options.load_timeout, [&](Conn& c) {
      auto req = c.worker.loadShardRequest();
      to_capnp(request, req.initRequest());
      return req.send().then([](capnp::Response<schema::Worker::LoadShardResults> r) {
        return keep_kind([&] { return from_capnp(r.getStats()); });
      });
    });
  });
}

std::future<std::vector<WorkerStep>> CoordinatorClient::run_step_async(const StepPlan& plan) {
  Loop& l = *loop_;
  // The continuations check each result against the plan after this call returns.
  auto shared_plan = std::make_shared<const StepPlan>(plan);
  return l.executor->executeSync([&] {
    return l.call_all<WorkerStep>("runStep", l.options.call_timeout, [&](Conn& c) {
      auto req = c.worker.runStepRequest();
      to_capnp(plan, req.initPlan());  // TODO(perf): encoded once per worker
      const Clock::time_point sent = Clock::now();
      return req.send().then([shared_plan, sent, rank = c.rank](capnp::Response<schema::Worker::RunStepResults> r) {
        return keep_kind([&] {
          WorkerStep step;
          step.rank = rank;
          step.result = from_capnp(r.getResult(), &step.timings);
          check_result_matches_plan(*shared_plan, step.result);
          const double round_trip = std::chrono::duration<double>(Clock::now() - sent).count();
          step.timings.rpc_seconds =
              std::max(0.0, round_trip - step.timings.queue_seconds - step.timings.compute_seconds);
          return step;
        });
      });
    });
  });
}

std::future<void> CoordinatorClient::release_async(std::span<const uint64_t> seq_ids) {
  Loop& l = *loop_;
  return l.executor->executeSync([&] {
    return l.call_all<void>("release", l.options.call_timeout, [&](Conn& c) {
      auto req = c.worker.releaseRequest();
      auto ids = req.initSeqIds(static_cast<unsigned>(seq_ids.size()));
      for (size_t i = 0; i < seq_ids.size(); ++i) ids.set(static_cast<unsigned>(i), seq_ids[i]);
      return req.send().ignoreResult();
    });
  });
}

std::future<std::vector<WorkerStatsValue>> CoordinatorClient::stats_async() {
  Loop& l = *loop_;
  return l.executor->executeSync([&] {
    return l.call_all<WorkerStatsValue>("stats", l.options.call_timeout, [&](Conn& c) {
      return c.worker.statsRequest().send().then([](capnp::Response<schema::Worker::StatsResults> r) {
        return keep_kind([&] { return from_capnp(r.getStats()); });
      });
    });
  });
}

void CoordinatorClient::shutdown() {
  Loop& l = *loop_;
  auto future = l.executor->executeSync([&] {
    return l.call_all<void>(
        "shutdown", l.options.call_timeout, [&](Conn& c) { return c.worker.shutdownRequest().send().ignoreResult(); },
        /*disconnect_ok=*/true);
  });
  future.get();
  l.executor->executeSync([&] {
    for (auto& c : l.conns) c->failed = "the worker was shut down";
  });
}

}  // namespace tessera::rpc
