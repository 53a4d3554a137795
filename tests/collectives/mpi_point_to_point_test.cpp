// send/recv, the non-blocking forms with overlap, sendrecv rings and the pipeline
// chain along the pp column, on every group of every grid.
#include <gtest/gtest.h>

#include <functional>
#include <numeric>

#include "collectives/mpi_communicator.h"
#include "tests/collectives/mpi_test_env.h"
#include "tests/collectives/mpi_test_values.h"

namespace tessera::test {
namespace {

void for_each_group(const std::function<void(GroupUnderTest&, const Topology&)>& fn) {
  const int n = mpi().world_size(), r = mpi().world_rank();
  for (const ParallelConfig& c : grids_for(n)) {
    Topology t(c, n, r);
    GroupCommunicators g = make_group_communicators(mpi(), t);
    for (GroupUnderTest& gt : groups_of(g, t)) {
      SCOPED_TRACE(grid_name(c) + ", group " + gt.comm->name() + ", " + t.describe());
      fn(gt, t);
    }
  }
}

// Pairs (0,1), (2,3), ...: the even rank sends first, the odd one receives first.
TEST(MpiPointToPoint, BlockingPairs) {
  for_each_group([](GroupUnderTest& g, const Topology&) {
    const int me = g.comm->rank(), peer = me ^ 1;
    if (peer >= g.comm->size()) return;
    std::vector<float> out(13), in(13, -1);
    for (size_t i = 0; i < out.size(); ++i) out[i] = value_of<float>(mpi().world_rank(), i);
    if (me % 2 == 0) {
      g.comm->send(out.data(), out.size(), CommType::kF32, peer, MpiTag::kTest);
      g.comm->recv(in.data(), in.size(), CommType::kF32, peer, MpiTag::kTest);
    } else {
      g.comm->recv(in.data(), in.size(), CommType::kF32, peer, MpiTag::kTest);
      g.comm->send(out.data(), out.size(), CommType::kF32, peer, MpiTag::kTest);
    }
    for (size_t i = 0; i < in.size(); ++i) ASSERT_EQ(in[i], value_of<float>(g.members[static_cast<size_t>(peer)], i));
  });
}

// Ring shift: post the receive, post the send, compute, then wait (what ring
// attention does with KV blocks).
TEST(MpiPointToPoint, NonBlockingRingOverlapsCompute) {
  for_each_group([](GroupUnderTest& g, const Topology&) {
    const int n = g.comm->size(), me = g.comm->rank();
    const int next = (me + 1) % n, prev = (me + n - 1) % n;
    std::vector<int64_t> out(1000), in(1000, -1);
    for (size_t i = 0; i < out.size(); ++i) out[i] = value_of<int64_t>(mpi().world_rank(), i);
    auto r = g.comm->irecv(in.data(), in.size(), CommType::kI64, prev, MpiTag::kRingKv);
    auto s = g.comm->isend(out.data(), out.size(), CommType::kI64, next, MpiTag::kRingKv);
    // Compute on other data while the transfer is in flight.
    std::vector<double> work(4096);
    std::iota(work.begin(), work.end(), 0.0);
    double acc = 0;
    for (int k = 0; k < 20; ++k) {
      for (double& w : work) acc += w * 1e-6;
      (void)r->test();  // progress; must not disturb completion
    }
    EXPECT_GT(acc, 0);
    r->wait();
    s->wait();
    EXPECT_TRUE(r->test());
    for (size_t i = 0; i < in.size(); ++i) ASSERT_EQ(in[i], value_of<int64_t>(g.members[static_cast<size_t>(prev)], i));
  });
}

TEST(MpiPointToPoint, SendrecvRingBothDirections) {
  for_each_group([](GroupUnderTest& g, const Topology&) {
    const int n = g.comm->size(), me = g.comm->rank();
    for (int shift : {1, n - 1}) {
      const int dest = (me + shift) % n, source = (me + n - shift) % n;
      int32_t out = mpi().world_rank() * 3 + 1, in = -1;
      g.comm->sendrecv(&out, 1, dest, &in, 1, source, CommType::kI32, MpiTag::kTest);
      ASSERT_EQ(in, g.members[static_cast<size_t>(source)] * 3 + 1);
    }
  });
}

// The pipeline: stage 0 starts a running sum of world ranks, every stage adds its own
// and hands it on; the last stage checks the sum over the column.
TEST(MpiPointToPoint, PipelineChainAlongThePpColumn) {
  const int n = mpi().world_size(), r = mpi().world_rank();
  for (const ParallelConfig& c : grids_for(n)) {
    SCOPED_TRACE(grid_name(c));
    Topology t(c, n, r);
    GroupCommunicators g = make_group_communicators(mpi(), t);
    std::vector<float> hidden(8, 0.f);
    if (!t.is_first_stage())
      g.pp->recv(hidden.data(), hidden.size(), CommType::kF32, t.pp_rank() - 1, MpiTag::kPipelineActivations);
    for (size_t i = 0; i < hidden.size(); ++i) hidden[i] += static_cast<float>(r * 10 + static_cast<int>(i));
    if (!t.is_last_stage()) {
      g.pp->send(hidden.data(), hidden.size(), CommType::kF32, t.pp_rank() + 1, MpiTag::kPipelineActivations);
    } else {
      for (size_t i = 0; i < hidden.size(); ++i) {
        float want = 0;
        for (int w : t.pp_column()) want += static_cast<float>(w * 10 + static_cast<int>(i));
        ASSERT_EQ(hidden[i], want);
      }
    }
  }
}

// Large messages split into several MPI calls arrive whole and in order.
TEST(MpiPointToPoint, SplitMessagesArriveInOrder) {
  auto c = MpiCommunicator::dup(mpi().world(), "world/4", 4);
  const int n = c->size(), me = c->rank(), next = (me + 1) % n, prev = (me + n - 1) % n;
  std::vector<int32_t> out(11), in(11, -1), in2(11, -1);
  for (size_t i = 0; i < out.size(); ++i) out[i] = value_of<int32_t>(me, i);
  auto r = c->irecv(in.data(), in.size(), CommType::kI32, prev, MpiTag::kTest);
  auto s = c->isend(out.data(), out.size(), CommType::kI32, next, MpiTag::kTest);
  r->wait();
  s->wait();
  c->sendrecv(out.data(), out.size(), next, in2.data(), in2.size(), prev, CommType::kI32, MpiTag::kTest);
  for (size_t i = 0; i < in.size(); ++i) {
    ASSERT_EQ(in[i], value_of<int32_t>(prev, i));
    ASSERT_EQ(in2[i], value_of<int32_t>(prev, i));
  }
}

}  // namespace
}  // namespace tessera::test
