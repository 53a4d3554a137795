// The NCCL backend on a real GPU: one device per rank (local rank picks it). Where
// there is no CUDA device (CI, this build machine) every rank prints why and exits 77,
// which ctest reports as skipped.
#include <cuda_runtime.h>
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>
#include <memory>
#include <numeric>
#include <vector>

#include "collectives/group_communicators.h"
#include "collectives/mpi_communicator.h"
#include "collectives/nccl_communicator.h"

namespace tessera::test {
namespace {

MpiContext* g_mpi = nullptr;  // set once in main

// Device buffer of T, RAII.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) { EXPECT_EQ(cudaMalloc(&p_, std::max<size_t>(n, 1) * sizeof(T)), cudaSuccess); }
  ~DeviceBuffer() { cudaFree(p_); }
  T* get() { return p_; }
  void put(const std::vector<T>& v) { EXPECT_EQ(cudaMemcpy(p_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess); }
  std::vector<T> take() {
    std::vector<T> v(n_);
    EXPECT_EQ(cudaMemcpy(v.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return v;
  }

 private:
  T* p_ = nullptr;
  size_t n_;
};

class NcclTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(cudaStreamCreate(&stream_), cudaSuccess);
    world_ = MpiCommunicator::dup(g_mpi->world(), "world");
    nccl_ = std::make_unique<NcclCommunicator>(*world_, stream_);
  }
  void TearDown() override {
    nccl_.reset();
    world_.reset();
    cudaStreamDestroy(stream_);
  }
  int me() const { return nccl_->rank(); }
  int n() const { return nccl_->size(); }

  cudaStream_t stream_ = nullptr;
  std::unique_ptr<MpiCommunicator> world_;       // bootstrap: outlives nccl_
  std::unique_ptr<NcclCommunicator> nccl_;
};

TEST_F(NcclTest, AllreduceAndNonBlocking) {
  DeviceBuffer<float> x(1000);
  x.put(std::vector<float>(1000, static_cast<float>(me() + 1)));
  nccl_->allreduce(x.get(), 1000, CommType::kF32, ReduceOp::kSum);
  auto req = nccl_->iallreduce(x.get(), 1000, CommType::kF32, ReduceOp::kMax);
  req->wait();
  const float want = static_cast<float>(n() * (n() + 1) / 2);
  for (float v : x.take()) ASSERT_EQ(v, want);
}

TEST_F(NcclTest, AllgatherReduceScatterBroadcast) {
  const size_t c = 4, N = static_cast<size_t>(n());
  DeviceBuffer<int32_t> in(c), out(N * c), rs(c), all(N * c);
  in.put(std::vector<int32_t>(c, me() * 10));
  nccl_->allgather(in.get(), out.get(), c, CommType::kI32);
  std::vector<int32_t> ones(N * c);
  std::iota(ones.begin(), ones.end(), 0);
  all.put(ones);
  nccl_->reduce_scatter(all.get(), rs.get(), c, CommType::kI32, ReduceOp::kSum);
  DeviceBuffer<int64_t> b(3);
  b.put(std::vector<int64_t>(3, me() == n() - 1 ? 42 : 0));
  nccl_->broadcast(b.get(), 3, CommType::kI64, n() - 1);
  nccl_->synchronize();
  auto g = out.take();
  for (size_t r = 0; r < N; ++r)
    for (size_t i = 0; i < c; ++i) ASSERT_EQ(g[r * c + i], static_cast<int32_t>(r * 10));
  auto s = rs.take();
  for (size_t i = 0; i < c; ++i) ASSERT_EQ(s[i], static_cast<int32_t>(N * (me() * c + i)));
  for (int64_t v : b.take()) ASSERT_EQ(v, 42);
}

TEST_F(NcclTest, RingIsendIrecvOverlapAndSendrecv) {
  const int next = (me() + 1) % n(), prev = (me() + n() - 1) % n();
  DeviceBuffer<float> out(256), in(256), in2(256);
  out.put(std::vector<float>(256, static_cast<float>(me())));
  auto r = nccl_->irecv(in.get(), 256, CommType::kF32, prev, MpiTag::kRingKv);
  auto s = nccl_->isend(out.get(), 256, CommType::kF32, next, MpiTag::kRingKv);
  r->wait();
  s->wait();
  nccl_->sendrecv(out.get(), 256, next, in2.get(), 256, prev, CommType::kF32, MpiTag::kRingKv);
  nccl_->synchronize();
  for (float v : in.take()) ASSERT_EQ(v, static_cast<float>(prev));
  for (float v : in2.take()) ASSERT_EQ(v, static_cast<float>(prev));
}

TEST_F(NcclTest, AlltoallvUnevenAndZero) {
  const size_t N = static_cast<size_t>(n()), m = static_cast<size_t>(me());
  std::vector<size_t> sc(N), so(N), rc(N), ro(N);
  size_t st = 0, rt = 0;
  for (size_t r = 0; r < N; ++r) {
    sc[r] = (m + r) % 3, so[r] = st, st += sc[r];
    rc[r] = (r + m) % 3, ro[r] = rt, rt += rc[r];
  }
  std::vector<int32_t> host(st);
  for (size_t r = 0; r < N; ++r)
    for (size_t j = 0; j < sc[r]; ++j) host[so[r] + j] = static_cast<int32_t>(m * 100 + r * 10 + j);
  DeviceBuffer<int32_t> send(st), recv(rt);
  send.put(host);
  nccl_->alltoallv(send.get(), sc, so, recv.get(), rc, ro, CommType::kI32);
  nccl_->synchronize();
  auto got = recv.take();
  for (size_t s = 0; s < N; ++s)
    for (size_t j = 0; j < rc[s]; ++j) ASSERT_EQ(got[ro[s] + j], static_cast<int32_t>(s * 100 + m * 10 + j));
  nccl_->barrier();
}

}  // namespace
}  // namespace tessera::test

int main(int argc, char** argv) {
  tessera::MpiContext mpi(&argc, &argv);
  tessera::test::g_mpi = &mpi;
  int devices = 0;
  const cudaError_t rc = cudaGetDeviceCount(&devices);
  if (rc != cudaSuccess) devices = 0;
  // Every rank needs its own device on its host; decide together so all ranks agree.
  int enough = devices >= mpi.local_size() ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &enough, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!enough) {
    if (mpi.world_rank() == 0) {
      if (devices == 0)
        std::printf("SKIP: no CUDA device (cudaGetDeviceCount: %s)\n",
                    rc == cudaSuccess ? "0 devices" : cudaGetErrorString(rc));
      else
        std::printf("SKIP: %d CUDA devices for %d ranks on this host (one each needed)\n", devices, mpi.local_size());
    }
    return 77;
  }
  if (cudaSetDevice(mpi.local_rank()) != cudaSuccess) return 1;
  ::testing::InitGoogleTest(&argc, argv);
  if (mpi.world_rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int result = RUN_ALL_TESTS();
  MPI_Allreduce(MPI_IN_PLACE, &result, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return result;
}
