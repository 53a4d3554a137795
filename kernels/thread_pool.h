// A small fork-join thread pool for the CPU ops.
//
// Decode calls ~10 ops per layer per token, so a dispatch must cost a few microseconds
// at most: workers spin briefly on a generation counter after each job (so the next
// op of the same token finds them awake), then sleep on a condition variable. The
// calling thread is worker 0 and runs the first chunk itself; with one thread every
// call runs inline. One caller at a time (calls from several threads are serialised);
// fn must not call parallel_for on the same pool (no nesting).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace tessera::kernels {

class ThreadPool {
 public:
  // A non-owning reference to a callable void(int64_t begin, int64_t end, int thread):
  // avoids std::function's allocation on the per-op hot path.
  class ChunkFn {
   public:
    template <typename F>
    ChunkFn(const F& f)  // NOLINT(google-explicit-constructor)
        : obj_(static_cast<const void*>(std::addressof(f))),
          call_([](const void* o, int64_t b, int64_t e, int t) {
            (*static_cast<const F*>(o))(b, e, t);
          }) {}
    void operator()(int64_t b, int64_t e, int t) const { call_(obj_, b, e, t); }

   private:
    const void* obj_;
    void (*call_)(const void*, int64_t, int64_t, int);
  };

  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Splits [0, n) into size() contiguous chunks (thread t gets [n*t/T, n*(t+1)/T)) and
  // runs fn(begin, end, t) for every non-empty chunk; returns when all are done. The
  // split depends only on n and size(), so results are deterministic per thread count.
  void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end, int thread)>& fn);

  // Same, for any callable without wrapping it in a std::function.
  template <typename F>
    requires(!std::is_same_v<std::remove_cvref_t<F>,
                             std::function<void(int64_t, int64_t, int)>>)
  void parallel_for(int64_t n, F&& fn) {
    run(n, ChunkFn(fn));
  }

  // Runs fn(begin, end, thread) over the same split; the primitive the others use.
  void run(int64_t n, ChunkFn fn);

 private:
  void worker_loop(int thread);
  void run_chunk(int thread);

  const int n_threads_;
  std::vector<std::thread> workers_;

  // Current job, published by bumping generation_ (release) after these are written.
  const ChunkFn* job_ = nullptr;
  int64_t job_n_ = 0;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};  // workers that have not finished the current job
  std::atomic<bool> stop_{false};  // set before a generation bump

  std::mutex mutex_;             // guards sleeping on cv_ (no lost wake-ups)
  std::condition_variable cv_;
  std::mutex caller_mutex_;      // serialises callers
};

}  // namespace tessera::kernels
