#include "kernels/thread_pool.h"

#include <glog/logging.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TESSERA_PAUSE() _mm_pause()
#else
#define TESSERA_PAUSE() ((void)0)
#endif

namespace tessera::kernels {
namespace {
// ~20-50 us of spinning on current x86 (pause is ~40-140 cycles): long enough to
// cover the gap between two ops of a decode step, short enough not to burn a core
// between tokens.
constexpr int kSpinIters = 2000;
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads) {
  CHECK_GE(n_threads, 1) << "ThreadPool needs at least one thread";
  workers_.reserve(n_threads - 1);
  for (int t = 1; t < n_threads; ++t) workers_.emplace_back([this, t] { worker_loop(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::run_chunk(int thread) {
  const int64_t n = job_n_;
  const int64_t begin = n * thread / n_threads_;
  const int64_t end = n * (thread + 1) / n_threads_;
  if (begin < end) (*job_)(begin, end, thread);
}

void ThreadPool::worker_loop(int thread) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int i = 0; g == seen && i < kSpinIters; ++i) {
      TESSERA_PAUSE();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      g = generation_.load(std::memory_order_acquire);
    }
    // stop_ is stored before the generation bump that we just acquired.
    if (stop_.load(std::memory_order_relaxed)) return;
    seen = g;
    run_chunk(thread);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::parallel_for(int64_t n,
                              const std::function<void(int64_t, int64_t, int)>& fn) {
  run(n, ChunkFn(fn));
}

void ThreadPool::run(int64_t n, ChunkFn fn) {
  if (n <= 0) return;
  if (n_threads_ == 1 || n == 1) {
    fn(0, n, 0);
    return;
  }
  std::lock_guard<std::mutex> caller(caller_mutex_);
  job_ = &fn;
  job_n_ = n;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  {
    // Bumping under the mutex means a worker between its predicate check and its
    // sleep cannot miss the wake-up. Uncontended, this is ~20 ns.
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();  // glibc skips the futex call when nobody sleeps
  run_chunk(0);
  for (int i = 0; pending_.load(std::memory_order_acquire) != 0; ++i) {
    if (i < 4 * kSpinIters) {
      TESSERA_PAUSE();
    } else {
      std::this_thread::yield();  // oversubscribed machine: let the worker run
    }
  }
  job_ = nullptr;
}

}  // namespace tessera::kernels
