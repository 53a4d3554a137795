#include "collectives/nccl_communicator.h"

#include <glog/logging.h>

#include <sched.h>

#include "common/error.h"

namespace tessera {

ncclDataType_t nccl_datatype(CommType type) {
  switch (type) {
    case CommType::kF32: return ncclFloat32;
    case CommType::kI32: return ncclInt32;
    case CommType::kI64: return ncclInt64;
    case CommType::kU8: return ncclUint8;
  }
  return ncclFloat32;
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return ncclSum;
    case ReduceOp::kMax: return ncclMax;
    case ReduceOp::kMin: return ncclMin;
  }
  return ncclSum;
}

// A CUDA event recorded after some enqueued work; null until the group it belongs to
// is closed.
struct NcclCommunicator::PendingEvent {
  cudaEvent_t event = nullptr;
  ~PendingEvent() {
    if (event) cudaEventDestroy(event);
  }
};

namespace {

class NcclRequest final : public Request {
 public:
  // `comm` outlives the request (Communicator contract: requests are waited or
  // dropped before their communicator).
  NcclRequest(NcclCommunicator& comm, std::shared_ptr<NcclCommunicator::PendingEvent> ev, std::string what)
      : comm_(comm), ev_(std::move(ev)), what_(std::move(what)) {}
  ~NcclRequest() override {
    // Work already enqueued cannot be cancelled; the stream finishes it (or the
    // communicator is aborted). Closing the group keeps the NCCL state consistent.
    if (!ev_->event) {
      try {
        comm_.flush_pending();
      } catch (const std::exception& e) {
        LOG(WARNING) << what_ << ": at destruction: " << e.what();
      }
    }
  }
  void wait() override {
    if (done_) return;
    if (!ev_->event) comm_.flush_pending();
    TESSERA_REQUIRE(ev_->event, ErrorKind::kDisconnected, what_, ": its NCCL group failed to start");
    comm_.wait_event(ev_->event, what_);
    done_ = true;
  }
  bool test() override {
    if (done_) return true;
    if (!ev_->event) comm_.flush_pending();
    TESSERA_REQUIRE(ev_->event, ErrorKind::kDisconnected, what_, ": its NCCL group failed to start");
    return done_ = comm_.query_event(ev_->event, what_);
  }

 private:
  NcclCommunicator& comm_;
  std::shared_ptr<NcclCommunicator::PendingEvent> ev_;
  std::string what_;
  bool done_ = false;
};

const char* at(const void* base, size_t elements, CommType type) {
  return static_cast<const char*>(base) + elements * comm_type_size(type);
}

}  // namespace

NcclCommunicator::NcclCommunicator(Communicator& bootstrap, cudaStream_t stream)
    : bootstrap_(bootstrap), stream_(stream), name_(bootstrap.name() + "/nccl") {
  ncclUniqueId id{};
  if (bootstrap_.rank() == 0) check(ncclGetUniqueId(&id), what("ncclGetUniqueId", 0, CommType::kU8));
  bootstrap_.broadcast(&id, sizeof(id), CommType::kU8, 0);
  check(ncclCommInitRank(&comm_, bootstrap_.size(), id, bootstrap_.rank()), what("ncclCommInitRank", 0, CommType::kU8));
}

NcclCommunicator::~NcclCommunicator() {
  if (group_open_) ncclGroupEnd();
  pending_.clear();
  if (!comm_) return;
  // After an error the peers may never finish: abort instead of a destroy that waits.
  if (aborted_) return;
  if (ncclCommDestroy(comm_) != ncclSuccess) ncclCommAbort(comm_);
}

std::string NcclCommunicator::what(const char* op, size_t count, CommType type, int peer) const {
  std::string s = detail::concat(name_, " (world ranks ");
  for (int i = 0; i < bootstrap_.size(); ++i) s += detail::concat(i ? "," : "", bootstrap_.world_rank(i));
  s += detail::concat("): ", op);
  if (peer >= 0) s += detail::concat(" group rank ", peer, " (world rank ", bootstrap_.world_rank(peer), ")");
  return s + detail::concat(", ", count, " x ", comm_type_name(type));
}

void NcclCommunicator::check(ncclResult_t rc, const std::string& what) {
  if (rc == ncclSuccess) return;
  const ErrorKind kind = rc == ncclInvalidArgument || rc == ncclInvalidUsage ? ErrorKind::kInternal
                         : rc == ncclUnhandledCudaError || rc == ncclSystemError
                             ? ErrorKind::kResource
                             : ErrorKind::kDisconnected;
  if (kind == ErrorKind::kDisconnected && comm_ && !aborted_) {
    ncclCommAbort(comm_);
    aborted_ = true;
  }
  throw Error(kind, detail::concat(what, ": NCCL: ", ncclGetErrorString(rc)));
}

void NcclCommunicator::check_cuda(cudaError_t rc, const std::string& what) {
  TESSERA_REQUIRE(rc == cudaSuccess, ErrorKind::kResource, what, ": CUDA: ", cudaGetErrorString(rc));
}

void NcclCommunicator::check_peer(int peer, const char* op) const {
  TESSERA_REQUIRE(peer >= 0 && peer < size(), ErrorKind::kInternal, name_, ": ", op, " peer ", peer,
                  " out of range [0, ", size(), ")");
}

void NcclCommunicator::flush_pending() {
  if (!group_open_) return;
  group_open_ = false;
  check(ncclGroupEnd(), name_ + ": ncclGroupEnd (isend/irecv)");
  // Every request of the group completes with the group: each records an event at
  // the same position in the stream.
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& p : pending) {
    check_cuda(cudaEventCreateWithFlags(&p->event, cudaEventDisableTiming), name_ + ": cudaEventCreate");
    check_cuda(cudaEventRecord(p->event, stream_), name_ + ": cudaEventRecord");
  }
}

bool NcclCommunicator::query_event(cudaEvent_t event, const std::string& what) {
  const cudaError_t q = cudaEventQuery(event);
  if (q == cudaSuccess) return true;
  if (q != cudaErrorNotReady) check_cuda(q, what);
  ncclResult_t async = ncclSuccess;
  check(ncclCommGetAsyncError(comm_, &async), what + ": ncclCommGetAsyncError");
  check(async, what);
  return false;
}

void NcclCommunicator::wait_event(cudaEvent_t event, const std::string& what) {
  // Poll rather than cudaEventSynchronize: a lost peer shows up as an asynchronous
  // NCCL error while the kernel would spin forever.
  while (!query_event(event, what)) sched_yield();
}

void NcclCommunicator::synchronize() {
  flush_pending();
  cudaEvent_t ev = nullptr;
  check_cuda(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), name_ + ": cudaEventCreate");
  PendingEvent owner;
  owner.event = ev;
  check_cuda(cudaEventRecord(ev, stream_), name_ + ": cudaEventRecord");
  wait_event(ev, name_ + ": synchronize");
}

std::unique_ptr<Request> NcclCommunicator::record_request(const std::string& what) {
  auto ev = std::make_shared<PendingEvent>();
  check_cuda(cudaEventCreateWithFlags(&ev->event, cudaEventDisableTiming), what + ": cudaEventCreate");
  check_cuda(cudaEventRecord(ev->event, stream_), what + ": cudaEventRecord");
  return std::make_unique<NcclRequest>(*this, std::move(ev), what);
}

void NcclCommunicator::allreduce(void* data, size_t count, CommType type, ReduceOp op) {
  flush_pending();
  check(ncclAllReduce(data, data, count, nccl_datatype(type), nccl_op(op), comm_, stream_),
        what("allreduce", count, type));
}

std::unique_ptr<Request> NcclCommunicator::iallreduce(void* data, size_t count, CommType type, ReduceOp op) {
  allreduce(data, count, type, op);
  return record_request(what("iallreduce", count, type));
}

void NcclCommunicator::allgather(const void* in, void* out, size_t count, CommType type) {
  flush_pending();
  check(ncclAllGather(in, out, count, nccl_datatype(type), comm_, stream_), what("allgather", count, type));
}

void NcclCommunicator::reduce_scatter(const void* in, void* out, size_t count, CommType type, ReduceOp op) {
  flush_pending();
  check(ncclReduceScatter(in, out, count, nccl_datatype(type), nccl_op(op), comm_, stream_),
        what("reduce_scatter", count, type));
}

void NcclCommunicator::alltoallv(const void* send, std::span<const size_t> send_counts,
                                 std::span<const size_t> send_offsets, void* recv,
                                 std::span<const size_t> recv_counts, std::span<const size_t> recv_offsets,
                                 CommType type) {
  const size_t n = static_cast<size_t>(size());
  TESSERA_REQUIRE(send_counts.size() == n && send_offsets.size() == n && recv_counts.size() == n &&
                      recv_offsets.size() == n,
                  ErrorKind::kInternal, name_, ": alltoallv needs ", n, " counts and offsets per side");
  flush_pending();
  const std::string w = what("alltoallv", 0, type);
  check(ncclGroupStart(), w);
  for (size_t r = 0; r < n; ++r) {
    // Zero counts are skipped: NCCL would still handshake with the peer.
    ncclResult_t rc = ncclSuccess;
    if (send_counts[r] > 0)
      rc = ncclSend(at(send, send_offsets[r], type), send_counts[r], nccl_datatype(type), static_cast<int>(r), comm_,
                    stream_);
    if (rc == ncclSuccess && recv_counts[r] > 0)
      rc = ncclRecv(const_cast<char*>(at(recv, recv_offsets[r], type)), recv_counts[r], nccl_datatype(type),
                    static_cast<int>(r), comm_, stream_);
    if (rc != ncclSuccess) {
      ncclGroupEnd();
      check(rc, what("alltoallv with", send_counts[r], type, static_cast<int>(r)));
    }
  }
  check(ncclGroupEnd(), w);
}

void NcclCommunicator::broadcast(void* data, size_t count, CommType type, int root) {
  check_peer(root, "broadcast root");
  flush_pending();
  check(ncclBroadcast(data, data, count, nccl_datatype(type), root, comm_, stream_),
        what("broadcast from", count, type, root));
}

void NcclCommunicator::send(const void* data, size_t count, CommType type, int dest, MpiTag tag) {
  check_peer(dest, "send to");
  flush_pending();
  check(ncclSend(data, count, nccl_datatype(type), dest, comm_, stream_), what("send to", count, type, dest));
}

void NcclCommunicator::recv(void* data, size_t count, CommType type, int source, MpiTag tag) {
  check_peer(source, "recv from");
  flush_pending();
  check(ncclRecv(data, count, nccl_datatype(type), source, comm_, stream_), what("recv from", count, type, source));
}

std::unique_ptr<Request> NcclCommunicator::grouped_p2p(bool is_send, void* data, size_t count, CommType type,
                                                       int peer) {
  const std::string w = what(is_send ? "isend to" : "irecv from", count, type, peer);
  if (!group_open_) {
    check(ncclGroupStart(), w + ": ncclGroupStart");
    group_open_ = true;
  }
  const ncclResult_t rc = is_send ? ncclSend(data, count, nccl_datatype(type), peer, comm_, stream_)
                                  : ncclRecv(data, count, nccl_datatype(type), peer, comm_, stream_);
  if (rc != ncclSuccess) {
    group_open_ = false;
    ncclGroupEnd();
    check(rc, w);
  }
  auto ev = std::make_shared<PendingEvent>();
  pending_.push_back(ev);
  return std::make_unique<NcclRequest>(*this, std::move(ev), w);
}

std::unique_ptr<Request> NcclCommunicator::isend(const void* data, size_t count, CommType type, int dest,
                                                 MpiTag tag) {
  check_peer(dest, "isend to");
  return grouped_p2p(true, const_cast<void*>(data), count, type, dest);
}

std::unique_ptr<Request> NcclCommunicator::irecv(void* data, size_t count, CommType type, int source, MpiTag tag) {
  check_peer(source, "irecv from");
  return grouped_p2p(false, data, count, type, source);
}

void NcclCommunicator::sendrecv(const void* send_data, size_t send_count, int dest, void* recv_data,
                                size_t recv_count, int source, CommType type, MpiTag tag) {
  check_peer(dest, "sendrecv to");
  check_peer(source, "sendrecv from");
  flush_pending();
  const std::string w = what("sendrecv with", send_count, type, dest);
  check(ncclGroupStart(), w);
  ncclResult_t rc = ncclSend(send_data, send_count, nccl_datatype(type), dest, comm_, stream_);
  if (rc == ncclSuccess) rc = ncclRecv(recv_data, recv_count, nccl_datatype(type), source, comm_, stream_);
  const ncclResult_t end = ncclGroupEnd();
  check(rc, w);
  check(end, w);
}

void NcclCommunicator::barrier() {
  synchronize();
  bootstrap_.barrier();
}

}  // namespace tessera
