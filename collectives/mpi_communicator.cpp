#include "collectives/mpi_communicator.h"

#include <algorithm>

#include "collectives/mpi_error.h"
#include "collectives/mpi_request.h"
#include "common/error.h"

namespace tessera {

MPI_Datatype mpi_datatype(CommType type) {
  switch (type) {
    case CommType::kF32: return MPI_FLOAT;
    case CommType::kI32: return MPI_INT32_T;
    case CommType::kI64: return MPI_INT64_T;
    case CommType::kU8: return MPI_UINT8_T;
  }
  return MPI_DATATYPE_NULL;
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return MPI_SUM;
    case ReduceOp::kMax: return MPI_MAX;
    case ReduceOp::kMin: return MPI_MIN;
  }
  return MPI_OP_NULL;
}

namespace {

// Calls fn(offset, n) over [0, count) in pieces of at most `max` elements; a zero
// count still makes one call, so that every rank takes part in a collective.
template <typename Fn>
void for_each_piece(size_t count, size_t max, Fn&& fn) {
  size_t off = 0;
  do {
    const size_t n = std::min(count - off, max);
    fn(off, static_cast<int>(n));
    off += n;
  } while (off < count);
}

char* at(void* base, size_t elements, CommType type) { return static_cast<char*>(base) + elements * comm_type_size(type); }
const char* at(const void* base, size_t elements, CommType type) {
  return static_cast<const char*>(base) + elements * comm_type_size(type);
}

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm, std::string name, size_t max_count_per_call)
    : comm_(comm), name_(std::move(name)), max_count_(std::clamp<size_t>(max_count_per_call, 1, kMaxCountPerCall)) {
  try {
    mpi_check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), name_ + ": MPI_Comm_set_errhandler");
    int size = 0;
    mpi_check(MPI_Comm_rank(comm_, &rank_), name_ + ": MPI_Comm_rank");
    mpi_check(MPI_Comm_size(comm_, &size), name_ + ": MPI_Comm_size");
    // World ranks of the members, once, so that every error can name the peer.
    MPI_Group group = MPI_GROUP_NULL, world = MPI_GROUP_NULL;
    mpi_check(MPI_Comm_group(comm_, &group), name_ + ": MPI_Comm_group");
    mpi_check(MPI_Comm_group(MPI_COMM_WORLD, &world), name_ + ": MPI_Comm_group(world)");
    std::vector<int> mine(static_cast<size_t>(size));
    for (int i = 0; i < size; ++i) mine[static_cast<size_t>(i)] = i;
    world_ranks_.resize(static_cast<size_t>(size));
    const int rc = MPI_Group_translate_ranks(group, size, mine.data(), world, world_ranks_.data());
    MPI_Group_free(&group);
    MPI_Group_free(&world);
    mpi_check(rc, name_ + ": MPI_Group_translate_ranks");
  } catch (...) {
    MPI_Comm_free(&comm_);
    throw;
  }
  label_ = name_ + " (world ranks ";
  for (size_t i = 0; i < world_ranks_.size(); ++i) label_ += detail::concat(i ? "," : "", world_ranks_[i]);
  label_ += ")";
}

MpiCommunicator::~MpiCommunicator() {
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::split(MPI_Comm parent, int color, int key, std::string name,
                                                        size_t max_count_per_call) {
  MPI_Comm comm = MPI_COMM_NULL;
  mpi_check(MPI_Comm_split(parent, color, key, &comm), detail::concat(name, ": MPI_Comm_split(color ", color, ")"));
  return std::make_unique<MpiCommunicator>(comm, std::move(name), max_count_per_call);
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::dup(MPI_Comm parent, std::string name, size_t max_count_per_call) {
  MPI_Comm comm = MPI_COMM_NULL;
  mpi_check(MPI_Comm_dup(parent, &comm), name + ": MPI_Comm_dup");
  return std::make_unique<MpiCommunicator>(comm, std::move(name), max_count_per_call);
}

int MpiCommunicator::world_rank(int group_rank) const {
  TESSERA_REQUIRE(group_rank >= 0 && group_rank < size(), ErrorKind::kInternal, label_, ": group rank ", group_rank,
                  " out of range [0, ", size(), ")");
  return world_ranks_[static_cast<size_t>(group_rank)];
}

std::string MpiCommunicator::what(const char* op, size_t count, CommType type, int peer) const {
  std::string s = detail::concat(label_, ": ", op);
  if (peer >= 0) s += detail::concat(" group rank ", peer, " (world rank ", world_ranks_[static_cast<size_t>(peer)], ")");
  return s + detail::concat(", ", count, " x ", comm_type_name(type));
}

void MpiCommunicator::check_peer(int peer, const char* op) const {
  TESSERA_REQUIRE(peer >= 0 && peer < size(), ErrorKind::kInternal, label_, ": ", op, " peer ", peer,
                  " out of range [0, ", size(), ")");
}

void MpiCommunicator::check_unsplittable(size_t count, const char* op) const {
  TESSERA_REQUIRE(count <= max_count_, ErrorKind::kUnsupported, label_, ": ", op, " of ", count,
                  " elements per rank exceeds one MPI call's limit of ", max_count_,
                  " (MPI counts are int); split the tensor");
}

void MpiCommunicator::allreduce(void* data, size_t count, CommType type, ReduceOp op) {
  for_each_piece(count, max_count_, [&](size_t off, int n) {
    mpi_check(MPI_Allreduce(MPI_IN_PLACE, at(data, off, type), n, mpi_datatype(type), mpi_op(op), comm_),
              what("allreduce", count, type));
  });
}

std::unique_ptr<Request> MpiCommunicator::iallreduce(void* data, size_t count, CommType type, ReduceOp op) {
  auto req = std::make_unique<MpiRequest>(MpiRequest::Kind::kCollective, what("iallreduce", count, type),
                                          mpi_datatype(type));
  for_each_piece(count, max_count_, [&](size_t off, int n) {
    MPI_Request r = MPI_REQUEST_NULL;
    mpi_check(MPI_Iallreduce(MPI_IN_PLACE, at(data, off, type), n, mpi_datatype(type), mpi_op(op), comm_, &r),
              what("iallreduce", count, type));
    req->add(r, n);
  });
  return req;
}

void MpiCommunicator::allgather(const void* in, void* out, size_t count, CommType type) {
  check_unsplittable(count, "allgather");
  // MPI forbids aliasing send and receive buffers; a caller that already put its block
  // in place (in == out + rank * count) gets MPI_IN_PLACE.
  const void* send = in == at(out, static_cast<size_t>(rank_) * count, type) ? MPI_IN_PLACE : in;
  const int n = static_cast<int>(count);
  mpi_check(MPI_Allgather(send, n, mpi_datatype(type), out, n, mpi_datatype(type), comm_),
            what("allgather", count, type));
}

void MpiCommunicator::reduce_scatter(const void* in, void* out, size_t count, CommType type, ReduceOp op) {
  check_unsplittable(count, "reduce_scatter");
  mpi_check(MPI_Reduce_scatter_block(in, out, static_cast<int>(count), mpi_datatype(type), mpi_op(op), comm_),
            what("reduce_scatter", count, type));
}

void MpiCommunicator::alltoallv(const void* send, std::span<const size_t> send_counts,
                                std::span<const size_t> send_offsets, void* recv, std::span<const size_t> recv_counts,
                                std::span<const size_t> recv_offsets, CommType type) {
  const size_t n = static_cast<size_t>(size());
  TESSERA_REQUIRE(send_counts.size() == n && send_offsets.size() == n && recv_counts.size() == n &&
                      recv_offsets.size() == n,
                  ErrorKind::kInternal, label_, ": alltoallv needs ", n, " counts and offsets per side, got ",
                  send_counts.size(), "/", send_offsets.size(), " send and ", recv_counts.size(), "/",
                  recv_offsets.size(), " recv");
  std::vector<int> sc(n), sd(n), rc(n), rd(n);
  size_t total = 0;
  for (size_t r = 0; r < n; ++r) {
    for (size_t v : {send_counts[r], send_offsets[r], recv_counts[r], recv_offsets[r]}) {
      TESSERA_REQUIRE(v <= max_count_, ErrorKind::kUnsupported, label_, ": alltoallv count or offset ", v,
                      " for group rank ", r, " (world rank ", world_ranks_[r], ") exceeds one MPI call's limit of ",
                      max_count_, " (MPI counts and displacements are int); split the exchange");
    }
    sc[r] = static_cast<int>(send_counts[r]);
    sd[r] = static_cast<int>(send_offsets[r]);
    rc[r] = static_cast<int>(recv_counts[r]);
    rd[r] = static_cast<int>(recv_offsets[r]);
    total += send_counts[r];
  }
  mpi_check(MPI_Alltoallv(send, sc.data(), sd.data(), mpi_datatype(type), recv, rc.data(), rd.data(),
                          mpi_datatype(type), comm_),
            what("alltoallv", total, type));
}

void MpiCommunicator::broadcast(void* data, size_t count, CommType type, int root) {
  check_peer(root, "broadcast root");
  for_each_piece(count, max_count_, [&](size_t off, int n) {
    mpi_check(MPI_Bcast(at(data, off, type), n, mpi_datatype(type), root, comm_),
              what("broadcast from", count, type, root));
  });
}

void MpiCommunicator::send(const void* data, size_t count, CommType type, int dest, MpiTag tag) {
  check_peer(dest, "send to");
  for_each_piece(count, max_count_, [&](size_t off, int n) {
    mpi_check(MPI_Send(at(data, off, type), n, mpi_datatype(type), dest, static_cast<int>(tag), comm_),
              what("send to", count, type, dest));
  });
}

void MpiCommunicator::recv(void* data, size_t count, CommType type, int source, MpiTag tag) {
  check_peer(source, "recv from");
  for_each_piece(count, max_count_, [&](size_t off, int n) {
    MPI_Status status;
    const std::string w = what("recv from", count, type, source);
    mpi_check(MPI_Recv(at(data, off, type), n, mpi_datatype(type), source, static_cast<int>(tag), comm_, &status), w);
    int got = 0;
    mpi_check(MPI_Get_count(&status, mpi_datatype(type), &got), w + ": MPI_Get_count");
    TESSERA_REQUIRE(got == n, ErrorKind::kInvalidInput, w, ": received ", got, " elements, expected ", n,
                    " (the peers disagree on the message size)");
  });
}

std::unique_ptr<Request> MpiCommunicator::isend(const void* data, size_t count, CommType type, int dest,
                                                MpiTag tag) {
  check_peer(dest, "isend to");
  auto req = std::make_unique<MpiRequest>(MpiRequest::Kind::kSend, what("isend to", count, type, dest),
                                          mpi_datatype(type));
  for_each_piece(count, max_count_, [&](size_t off, int n) {
    MPI_Request r = MPI_REQUEST_NULL;
    mpi_check(MPI_Isend(at(data, off, type), n, mpi_datatype(type), dest, static_cast<int>(tag), comm_, &r),
              what("isend to", count, type, dest));
    req->add(r, n);
  });
  return req;
}

std::unique_ptr<Request> MpiCommunicator::irecv(void* data, size_t count, CommType type, int source, MpiTag tag) {
  check_peer(source, "irecv from");
  auto req = std::make_unique<MpiRequest>(MpiRequest::Kind::kRecv, what("irecv from", count, type, source),
                                          mpi_datatype(type));
  for_each_piece(count, max_count_, [&](size_t off, int n) {
    MPI_Request r = MPI_REQUEST_NULL;
    mpi_check(MPI_Irecv(at(data, off, type), n, mpi_datatype(type), source, static_cast<int>(tag), comm_, &r),
              what("irecv from", count, type, source));
    req->add(r, n);
  });
  return req;
}

void MpiCommunicator::barrier() { mpi_check(MPI_Barrier(comm_), label_ + ": barrier"); }

}  // namespace tessera
