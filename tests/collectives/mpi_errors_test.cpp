// The error path: what MPI lets us detect becomes tessera::Error naming the group,
// the operation and the peer's world rank; nothing aborts and nothing hangs.
// (A peer that exits is covered by docs/COLLECTIVES.md: Open MPI's runtime kills the
// job, which no library call can turn into an exception.)
#include <gtest/gtest.h>

#include "collectives/mpi_communicator.h"
#include "common/error.h"
#include "tests/collectives/mpi_test_env.h"

namespace tessera::test {
namespace {

std::unique_ptr<MpiCommunicator> world(const char* name) { return MpiCommunicator::dup(mpi().world(), name); }

void expect_error(const std::function<void()>& fn, ErrorKind kind, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no tessera::Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    for (const std::string& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

// The sender sends 8 elements, the receiver posts 4: MPI_ERR_TRUNCATE.
TEST(MpiErrors, LongerMessageThanReceiveBuffer) {
  auto c = world("errtest");
  if (c->size() < 2) GTEST_SKIP() << "needs 2 ranks";
  float buf[8] = {};
  if (c->rank() == 0) {
    c->send(buf, 8, CommType::kF32, 1, MpiTag::kTest);
    c->send(buf, 8, CommType::kF32, 1, MpiTag::kTest);
  } else if (c->rank() == 1) {
    expect_error([&] { c->recv(buf, 4, CommType::kF32, 0, MpiTag::kTest); }, ErrorKind::kInvalidInput,
                 {"errtest (world ranks 0,1", "recv from group rank 0 (world rank 0), 4 x f32", "TRUNCATE"});
    auto r = c->irecv(buf, 4, CommType::kF32, 0, MpiTag::kTest);
    expect_error([&] { r->wait(); }, ErrorKind::kInvalidInput, {"irecv from group rank 0 (world rank 0)"});
  }
  c->barrier();  // the communicator is still usable after the error
}

// The sender sends 2 elements, the receiver expects 4: MPI succeeds with a short
// message; the count check turns it into an error.
TEST(MpiErrors, ShorterMessageThanExpected) {
  auto c = world("short");
  if (c->size() < 2) GTEST_SKIP() << "needs 2 ranks";
  int64_t buf[4] = {};
  const int last = c->size() - 1;
  if (c->rank() == last) {
    c->send(buf, 2, CommType::kI64, 0, MpiTag::kTest);
    c->send(buf, 2, CommType::kI64, 0, MpiTag::kTest);
  } else if (c->rank() == 0) {
    expect_error([&] { c->recv(buf, 4, CommType::kI64, last, MpiTag::kTest); }, ErrorKind::kInvalidInput,
                 {"received 2 elements, expected 4", "world rank " + std::to_string(last)});
    auto r = c->irecv(buf, 4, CommType::kI64, last, MpiTag::kTest);
    expect_error([&] { r->wait(); }, ErrorKind::kInvalidInput, {"received 2 elements, expected 4"});
  }
  c->barrier();
}

TEST(MpiErrors, BadPeerIsRejectedBeforeMpi) {
  auto c = world("peers");
  float x = 0;
  expect_error([&] { c->send(&x, 1, CommType::kF32, c->size(), MpiTag::kTest); }, ErrorKind::kInternal,
               {"peers (world ranks", "send to peer"});
  expect_error([&] { c->irecv(&x, 1, CommType::kF32, -1, MpiTag::kTest); }, ErrorKind::kInternal, {"irecv from"});
  expect_error([&] { c->broadcast(&x, 1, CommType::kF32, c->size()); }, ErrorKind::kInternal, {"broadcast root"});
  expect_error([&] { c->world_rank(c->size()); }, ErrorKind::kInternal, {"out of range"});
  std::vector<size_t> wrong(static_cast<size_t>(c->size()) + 1, 0);
  expect_error([&] { c->alltoallv(&x, wrong, wrong, &x, wrong, wrong, CommType::kF32); }, ErrorKind::kInternal,
               {"alltoallv needs"});
}

// A request dropped without wait (an exception unwinding) does not hang: a pending
// receive is cancelled, and the communicator stays usable.
TEST(MpiErrors, DroppedReceiveIsCancelled) {
  auto c = world("cancel");
  float x = 0;
  {
    auto r = c->irecv(&x, 1, CommType::kF32, (c->rank() + 1) % c->size(), MpiTag::kStartup);
    EXPECT_FALSE(r->test());
  }
  try {
    auto r = c->irecv(&x, 1, CommType::kF32, 0, MpiTag::kStartup);
    throw Error(ErrorKind::kInternal, "unwinding with a pending receive");
  } catch (const Error&) {
  }
  c->barrier();
}

}  // namespace
}  // namespace tessera::test
