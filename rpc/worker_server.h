// A worker rank's end of the control plane: serves schemas/worker.capnp's Gate on a
// thread of its own (its own KJ event loop), bound to a given address on an ephemeral
// port, and hands every Worker call to a StepExecutor on a separate compute thread.
//
//   WorkerServer server(executor, {.bind_host = my_mpi_address, .secret = secret,
//                                  .rank = rank, .host = hostname});
//   endpoints = mpi_gather(server.endpoint());   // rank 0 connects to them
//   server.wait();                               // until a coordinator calls shutdown
//
// Threads: the event loop thread decodes requests, queues work on the compute thread
// and returns a promise that the compute thread fulfils cross-thread
// (kj::newPromiseAndCrossThreadFulfiller), then encodes the reply. Nothing blocking
// runs on the event loop. See docs/CONTROL_PLANE.md.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "rpc/executor.h"
#include "rpc/secret.h"

namespace tessera::rpc {

struct WorkerServerOptions {
  // The address to listen on: the host's MPI/cluster address, or "127.0.0.1" for one
  // machine. Required: there is deliberately no default, and never 0.0.0.0 unless
  // the caller writes it.
  std::string bind_host;
  uint16_t port = 0;  // 0: ephemeral
  Secret secret{};    // the job secret (rpc/secret.h); hello must present it
  int32_t rank = 0;   // reported in hello and stats
  std::string host;   // reported in hello and stats (the hostname)
  // Non-zero: hello refuses a coordinator whose plan fingerprint differs.
  uint64_t plan_fingerprint = 0;
  // After a shutdown call has been answered, how long the loop waits before closing
  // connections, so the reply reaches the coordinator first.
  std::chrono::milliseconds shutdown_grace{200};
};

class WorkerServer {
 public:
  // Starts both threads and returns once listening. Throws tessera::Error
  // (kInvalidInput: bad address, kResource: cannot bind). `executor` must outlive
  // this server.
  WorkerServer(StepExecutor& executor, WorkerServerOptions options);
  ~WorkerServer();  // stop()
  WorkerServer(const WorkerServer&) = delete;
  WorkerServer& operator=(const WorkerServer&) = delete;

  uint16_t port() const { return port_; }
  // "bind_host:port", what rank 0 should dial.
  std::string endpoint() const;
  // The socket's own address (getsockname), e.g. "127.0.0.1:40123".
  const std::string& bound_address() const { return bound_address_; }

  // Blocks until a coordinator's shutdown call has run and both threads have ended.
  void wait();
  bool wait_for(std::chrono::milliseconds timeout);  // false on timeout

  // Stops the event loop (dropping connections: in-flight calls fail as
  // disconnected on the coordinator), then runs queued work and ends the compute
  // thread. Idempotent. Waits for a running executor call to return.
  void stop();

  struct Core;  // shared by the loop thread's RPC objects (worker_server.cpp)

 private:
  void loop_main();

  std::unique_ptr<Core> core_;
  uint16_t port_ = 0;
  std::string bound_address_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool finished_ = false;  // guarded by mu_: both threads have ended
  std::thread loop_thread_;
};

}  // namespace tessera::rpc
