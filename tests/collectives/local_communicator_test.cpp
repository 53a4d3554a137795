// The single-rank backend: every op is a copy or a no-op, no MPI.
#include "collectives/local_communicator.h"

#include <gtest/gtest.h>

#include <vector>

#include "common/error.h"

namespace tessera {
namespace {

TEST(LocalCommunicator, CollectivesAreCopies) {
  LocalCommunicator c("tp", 5);
  EXPECT_EQ(c.size(), 1);
  EXPECT_EQ(c.rank(), 0);
  EXPECT_EQ(c.world_rank(0), 5);
  std::vector<float> x{1, 2, 3};
  c.allreduce(x.data(), 3, CommType::kF32, ReduceOp::kSum);
  allreduce_sum(c, x.data(), 3);
  c.iallreduce(x.data(), 3, CommType::kF32, ReduceOp::kMax)->wait();
  EXPECT_EQ(x, (std::vector<float>{1, 2, 3}));
  std::vector<float> y(3);
  c.allgather(x.data(), y.data(), 3, CommType::kF32);
  EXPECT_EQ(y, x);
  std::vector<int32_t> a{7, 8}, b(2);
  c.reduce_scatter(a.data(), b.data(), 2, CommType::kI32, ReduceOp::kSum);
  EXPECT_EQ(b, a);
  c.broadcast(a.data(), 2, CommType::kI32, 0);
  c.barrier();
  const size_t sc[] = {2}, so[] = {1}, rc[] = {2}, ro[] = {0};
  std::vector<int64_t> s{9, 10, 11}, r(2);
  c.alltoallv(s.data(), sc, so, r.data(), rc, ro, CommType::kI64);
  EXPECT_EQ(r, (std::vector<int64_t>{10, 11}));
}

TEST(LocalCommunicator, SendToSelfThroughTheMailbox) {
  LocalCommunicator c("pp");
  std::vector<int32_t> got(2);
  auto r = c.irecv(got.data(), 2, CommType::kI32, 0, MpiTag::kTest);
  EXPECT_FALSE(r->test());
  const int32_t a[] = {3, 4}, b[] = {5, 6};
  c.send(b, 2, CommType::kI32, 0, MpiTag::kPipelineActivations);  // another tag: not matched
  c.isend(a, 2, CommType::kI32, 0, MpiTag::kTest)->wait();
  r->wait();
  EXPECT_EQ(got, (std::vector<int32_t>{3, 4}));
  c.recv(got.data(), 2, CommType::kI32, 0, MpiTag::kPipelineActivations);
  EXPECT_EQ(got, (std::vector<int32_t>{5, 6}));
  float out = 0, in = 2.5f;
  c.sendrecv(&in, 1, 0, &out, 1, 0, CommType::kF32, MpiTag::kRingKv);
  EXPECT_EQ(out, 2.5f);
}

TEST(LocalCommunicator, ErrorsInsteadOfDeadlocks) {
  LocalCommunicator c("cp", 2);
  float x = 0;
  EXPECT_THROW(c.recv(&x, 1, CommType::kF32, 0, MpiTag::kTest), Error);
  EXPECT_THROW(c.send(&x, 1, CommType::kF32, 1, MpiTag::kTest), Error);
  EXPECT_THROW(c.broadcast(&x, 1, CommType::kF32, 1), Error);
  c.send(&x, 1, CommType::kF32, 0, MpiTag::kTest);
  double d = 0;
  try {
    c.recv(&d, 2, CommType::kF32, 0, MpiTag::kTest);
    ADD_FAILURE() << "size mismatch not detected";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("expected 8"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tessera
