#include "kernels/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <vector>

#include "kernels/cpu_features.h"

namespace tessera::kernels {
namespace {

TEST(ThreadPool, CoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 2, 3, 7, 100, 1001}) {
      std::vector<std::atomic<int>> hits(n);
      std::atomic<int> calls{0};
      pool.parallel_for(n, [&](int64_t b, int64_t e, int t) {
        EXPECT_LT(b, e);
        EXPECT_GE(t, 0);
        EXPECT_LT(t, threads);
        for (int64_t i = b; i < e; ++i) hits[i]++;
        calls++;
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i], 1) << "n " << n << " i " << i;
      EXPECT_LE(calls, threads);
    }
  }
}

TEST(ThreadPool, StdFunctionOverloadAndManyCalls) {
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  const std::function<void(int64_t, int64_t, int)> fn = [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) sum += i;
  };
  for (int rep = 0; rep < 2000; ++rep) pool.parallel_for(10, fn);
  EXPECT_EQ(sum, 2000 * 45);
}

TEST(ThreadPool, OneThreadRunsInline) {
  ThreadPool pool(1);
  const auto self = std::this_thread::get_id();
  pool.parallel_for(5, [&](int64_t b, int64_t e, int t) {
    EXPECT_EQ(std::this_thread::get_id(), self);
    EXPECT_EQ(b, 0);
    EXPECT_EQ(e, 5);
    EXPECT_EQ(t, 0);
  });
}

// Reports the dispatch cost (not asserted: the machine is shared).
TEST(ThreadPool, DispatchCost) {
  ThreadPool pool(2);
  std::atomic<int> x{0};
  auto fn = [&](int64_t, int64_t, int) { x.fetch_add(1, std::memory_order_relaxed); };
  for (int i = 0; i < 100; ++i) pool.parallel_for(2, fn);
  const int reps = 20000;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) pool.parallel_for(2, fn);
  const double us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / reps;
  RecordProperty("dispatch_us", std::to_string(us));
  std::printf("parallel_for dispatch (2 threads, back to back): %.2f us\n", us);
  EXPECT_EQ(x, 2 * (reps + 100));
}

TEST(CpuFeatures, OverrideClampsAndRestores) {
  const Isa detected = detected_isa();
  {
    ScopedIsa s(Isa::kScalar);
    EXPECT_EQ(active_isa(), Isa::kScalar);
    {
      ScopedIsa s2(Isa::kAvx512Bf16);
      EXPECT_EQ(active_isa(), detected);  // clamped to what the CPU has
    }
    EXPECT_EQ(active_isa(), Isa::kScalar);
  }
  EXPECT_EQ(active_isa(), detected);
  std::printf("detected ISA: %s\n", std::string(isa_name(detected)).c_str());
}

}  // namespace
}  // namespace tessera::kernels
