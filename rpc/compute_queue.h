// The worker's compute thread: one thread, a FIFO of jobs, so steps and every other
// executor call run one at a time in the order the RPCs arrived (DESIGN.md, "Threads
// in a process"). The event loop only posts here; it never blocks on a job.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace tessera::rpc {

class ComputeQueue {
 public:
  ComputeQueue();
  ~ComputeQueue();  // stop()
  ComputeQueue(const ComputeQueue&) = delete;
  ComputeQueue& operator=(const ComputeQueue&) = delete;

  // Runs `job` on the compute thread after every job posted before it. A job posted
  // after stop() is dropped (destroyed unrun on the calling thread).
  void post(std::function<void()> job);

  // Runs the jobs already queued, then joins the thread. Waits for a running job to
  // return: an executor call that never returns blocks this (and the server's stop).
  void stop();

 private:
  void run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;  // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
  std::thread thread_;                      // last: starts after the members above exist
};

}  // namespace tessera::rpc
