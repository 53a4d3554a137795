// Every collective on every group (world, tp, pp, cp, ep) of every grid the world size
// allows, with exact expected values computed from the members' world ranks.
#include <gtest/gtest.h>

#include <functional>

#include "collectives/mpi_communicator.h"
#include "common/error.h"
#include "tests/collectives/mpi_test_env.h"
#include "tests/collectives/mpi_test_values.h"

namespace tessera::test {
namespace {

// Runs fn(group) on every group of every grid; all ranks walk the same sequence.
void for_each_group(const std::function<void(GroupUnderTest&)>& fn) {
  const int n = mpi().world_size(), r = mpi().world_rank();
  for (const ParallelConfig& c : grids_for(n)) {
    Topology t(c, n, r);
    GroupCommunicators g = make_group_communicators(mpi(), t);
    for (GroupUnderTest& gt : groups_of(g, t)) {
      SCOPED_TRACE(grid_name(c) + ", group " + gt.comm->name() + ", " + t.describe());
      fn(gt);
    }
  }
}

TEST(MpiCollectives, GroupsMatchTheTopology) {
  for_each_group([](GroupUnderTest& g) {
    ASSERT_EQ(g.comm->size(), static_cast<int>(g.members.size()));
    EXPECT_EQ(g.members[static_cast<size_t>(g.comm->rank())], mpi().world_rank());
    for (int i = 0; i < g.comm->size(); ++i) EXPECT_EQ(g.comm->world_rank(i), g.members[static_cast<size_t>(i)]);
  });
}

template <typename T>
void check_allreduce(Communicator& c, const std::vector<int>& members, ReduceOp op, size_t count, bool nonblocking) {
  std::vector<T> x(count);
  for (size_t i = 0; i < count; ++i) x[i] = value_of<T>(mpi().world_rank(), i);
  if (nonblocking) {
    auto req = c.iallreduce(x.data(), count, comm_type_of<T>(), op);
    // Overlap: compute while the reduction is in flight (the buffer is not touched).
    volatile double busy = 0;
    for (int i = 0; i < 10000; ++i) busy = busy + i * 0.5;
    req->wait();
    EXPECT_TRUE(req->test());
  } else {
    c.allreduce(x.data(), count, comm_type_of<T>(), op);
  }
  for (size_t i = 0; i < count; ++i) {
    T want = value_of<T>(members[0], i);
    for (size_t m = 1; m < members.size(); ++m) want = reduce(op, want, value_of<T>(members[m], i));
    ASSERT_EQ(x[i], want) << "element " << i << " of " << count;
  }
}

TEST(MpiCollectives, AllreduceEveryTypeAndOp) {
  for_each_group([](GroupUnderTest& g) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMax, ReduceOp::kMin}) {
      for (bool nb : {false, true}) {
        check_allreduce<float>(*g.comm, g.members, op, 37, nb);
        check_allreduce<int32_t>(*g.comm, g.members, op, 5, nb);
        check_allreduce<int64_t>(*g.comm, g.members, op, 3, nb);
        check_allreduce<uint8_t>(*g.comm, g.members, op, 11, nb);
        check_allreduce<float>(*g.comm, g.members, op, 0, nb);  // zero elements: still collective
      }
    }
  });
}

TEST(MpiCollectives, Allgather) {
  for_each_group([](GroupUnderTest& g) {
    const size_t count = 6, n = g.members.size();
    std::vector<float> in(count), out(n * count, -1);
    for (size_t i = 0; i < count; ++i) in[i] = value_of<float>(mpi().world_rank(), i);
    g.comm->allgather(in.data(), out.data(), count, CommType::kF32);
    for (size_t r = 0; r < n; ++r)
      for (size_t i = 0; i < count; ++i) ASSERT_EQ(out[r * count + i], value_of<float>(g.members[r], i));
    // In place: my block already sits at rank * count.
    std::vector<int64_t> io(n * count, -1);
    const size_t me = static_cast<size_t>(g.comm->rank());
    for (size_t i = 0; i < count; ++i) io[me * count + i] = value_of<int64_t>(mpi().world_rank(), i);
    g.comm->allgather(io.data() + me * count, io.data(), count, CommType::kI64);
    for (size_t r = 0; r < n; ++r)
      for (size_t i = 0; i < count; ++i) ASSERT_EQ(io[r * count + i], value_of<int64_t>(g.members[r], i));
  });
}

TEST(MpiCollectives, ReduceScatter) {
  for_each_group([](GroupUnderTest& g) {
    const size_t count = 4, n = g.members.size(), me = static_cast<size_t>(g.comm->rank());
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMax}) {
      std::vector<int32_t> in(n * count), out(count, -1);
      for (size_t i = 0; i < n * count; ++i) in[i] = value_of<int32_t>(mpi().world_rank(), i);
      g.comm->reduce_scatter(in.data(), out.data(), count, CommType::kI32, op);
      for (size_t i = 0; i < count; ++i) {
        int32_t want = value_of<int32_t>(g.members[0], me * count + i);
        for (size_t m = 1; m < n; ++m) want = reduce(op, want, value_of<int32_t>(g.members[m], me * count + i));
        ASSERT_EQ(out[i], want) << "element " << i;
      }
    }
  });
}

// Rank s sends (s + r) % 3 elements to rank r: uneven, and zero for some pairs. The
// buffers have gaps (offset = prefix + r) so that offsets are really used.
TEST(MpiCollectives, AlltoallvUnevenAndZeroCounts) {
  for_each_group([](GroupUnderTest& g) {
    const size_t n = g.members.size(), me = static_cast<size_t>(g.comm->rank());
    auto count = [](size_t s, size_t r) { return (s + r) % 3; };
    auto value = [&](size_t s, size_t r, size_t j) { return static_cast<int32_t>(g.members[s] * 1000 + r * 10 + j); };
    std::vector<size_t> sc(n), so(n), rc(n), ro(n);
    size_t send_total = 0, recv_total = 0;
    for (size_t r = 0; r < n; ++r) {
      sc[r] = count(me, r);
      so[r] = send_total + r;
      send_total = so[r] + sc[r];
      rc[r] = count(r, me);
      ro[r] = recv_total + r;
      recv_total = ro[r] + rc[r];
    }
    std::vector<int32_t> send(send_total + 1, -7), recv(recv_total + 1, -9);
    for (size_t r = 0; r < n; ++r)
      for (size_t j = 0; j < sc[r]; ++j) send[so[r] + j] = value(me, r, j);
    g.comm->alltoallv(send.data(), sc, so, recv.data(), rc, ro, CommType::kI32);
    for (size_t s = 0; s < n; ++s) {
      for (size_t j = 0; j < rc[s]; ++j) ASSERT_EQ(recv[ro[s] + j], value(s, me, j)) << "from " << s;
      if (s >= 1) {
        EXPECT_EQ(recv[ro[s] - 1], -9) << "gap before block " << s << " written";
      }
    }
  });
}

TEST(MpiCollectives, BroadcastFromEveryRoot) {
  for_each_group([](GroupUnderTest& g) {
    for (int root = 0; root < g.comm->size(); ++root) {
      std::vector<uint8_t> x(9);
      for (size_t i = 0; i < x.size(); ++i) x[i] = value_of<uint8_t>(mpi().world_rank(), i);
      g.comm->broadcast(x.data(), x.size(), CommType::kU8, root);
      for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(x[i], value_of<uint8_t>(g.members[static_cast<size_t>(root)], i));
    }
    g.comm->barrier();
  });
}

// Operations above the per-call element limit are split (allreduce, broadcast) or
// rejected clearly (allgather, reduce_scatter, alltoallv). The limit is lowered to 3
// so that a 10-element tensor stands in for one above INT_MAX.
TEST(MpiCollectives, LargeCountsAreSplitOrRejected) {
  auto c = MpiCommunicator::dup(mpi().world(), "world/3", 3);
  const int n = c->size();
  std::vector<int64_t> x(10);
  for (size_t i = 0; i < x.size(); ++i) x[i] = value_of<int64_t>(mpi().world_rank(), i);
  c->allreduce(x.data(), x.size(), CommType::kI64, ReduceOp::kSum);
  for (size_t i = 0; i < x.size(); ++i) {
    int64_t want = 0;
    for (int w = 0; w < n; ++w) want += value_of<int64_t>(w, i);
    ASSERT_EQ(x[i], want);
  }
  auto req = c->iallreduce(x.data(), x.size(), CommType::kI64, ReduceOp::kMin);
  req->wait();
  std::vector<float> b(10, mpi().world_rank() == n - 1 ? 4.5f : 0.f);
  c->broadcast(b.data(), b.size(), CommType::kF32, n - 1);
  for (float v : b) ASSERT_EQ(v, 4.5f);

  std::vector<float> out(static_cast<size_t>(n) * 10);
  try {
    c->allgather(b.data(), out.data(), 10, CommType::kF32);
    ADD_FAILURE() << "allgather over the limit accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("world/3 (world ranks 0"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("allgather of 10 elements"), std::string::npos) << e.what();
  }
  EXPECT_THROW(c->reduce_scatter(out.data(), b.data(), 10, CommType::kF32, ReduceOp::kSum), Error);
  std::vector<size_t> counts(static_cast<size_t>(n), 4), offsets(static_cast<size_t>(n), 0);
  EXPECT_THROW(c->alltoallv(out.data(), counts, offsets, out.data(), counts, offsets, CommType::kF32), Error);
  c->barrier();
}

TEST(MpiCollectives, MpiContextReportsTheLaunch) {
  EXPECT_GE(mpi().thread_level(), MPI_THREAD_SERIALIZED);
  EXPECT_FALSE(mpi().host_name().empty());
  EXPECT_GE(mpi().local_rank(), 0);
  EXPECT_LT(mpi().local_rank(), mpi().local_size());
  // One host here: local ranks equal world ranks.
  int smallest_host = mpi().local_size();
  MPI_Allreduce(MPI_IN_PLACE, &smallest_host, 1, MPI_INT, MPI_MIN, mpi().world());
  if (smallest_host == mpi().world_size()) {
    EXPECT_EQ(mpi().local_rank(), mpi().world_rank());
  }
}

TEST(MpiCollectives, TopologyMustMatchTheLaunch) {
  const int n = mpi().world_size();
  Topology t(ParallelConfig{n + 1, 1, 1, 1}, n + 1, mpi().world_rank());
  try {
    make_group_communicators(mpi(), t);
    ADD_FAILURE() << "mismatched topology accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("does not match MPI"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tessera::test
