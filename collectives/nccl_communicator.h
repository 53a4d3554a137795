// The NCCL backend of Communicator: the same operations on DEVICE buffers, enqueued
// on one CUDA stream. Built only with CUDA (target tessera_collectives_nccl).
//
// Differences from the MPI backend, all forced by NCCL:
//   - Stream order. "Blocking" calls return once the work is enqueued on stream();
//     later work on that stream sees the result; the host must synchronize() before
//     reading. Non-blocking calls return a Request whose wait() blocks the host until
//     the work is done (polling ncclCommGetAsyncError, so a failed peer becomes
//     tessera::Error(kDisconnected) and the communicator is aborted, not a hang on a
//     dead kernel).
//   - No tags: messages between a pair match in the order they are posted. `tag` is
//     accepted for the interface and ignored.
//   - A lone ncclSend and ncclRecv on one stream deadlock a ring (each rank's recv
//     waits for a send queued behind the peer's recv). So isend/irecv open an NCCL
//     group that stays open until the first wait()/test() or any other operation
//     closes it: "post irecv, post isend, compute, wait" issues both as one group.
//     sendrecv and alltoallv are grouped calls.
//   - Counts are size_t: no splitting.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <memory>
#include <string>
#include <vector>

#include "collectives/communicator.h"

namespace tessera {

class NcclCommunicator final : public Communicator {
 public:
  // Collective over `bootstrap` (the MPI communicator of the same group): its rank 0
  // makes the ncclUniqueId and broadcasts it; every rank joins with its bootstrap
  // rank. The CUDA device must be selected first (cudaSetDevice(local rank)).
  // `bootstrap` must outlive this object (names, world ranks, barrier); `stream` is
  // not owned and must outlive it too.
  NcclCommunicator(Communicator& bootstrap, cudaStream_t stream);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  cudaStream_t stream() const { return stream_; }
  // Blocks the host until everything enqueued so far is done; throws on failure.
  void synchronize();

  int rank() const override { return bootstrap_.rank(); }
  int size() const override { return bootstrap_.size(); }
  int world_rank(int group_rank) const override { return bootstrap_.world_rank(group_rank); }
  const std::string& name() const override { return name_; }

  void allreduce(void* data, size_t count, CommType type, ReduceOp op) override;
  std::unique_ptr<Request> iallreduce(void* data, size_t count, CommType type, ReduceOp op) override;
  void allgather(const void* in, void* out, size_t count, CommType type) override;
  void reduce_scatter(const void* in, void* out, size_t count, CommType type, ReduceOp op) override;
  void alltoallv(const void* send, std::span<const size_t> send_counts, std::span<const size_t> send_offsets,
                 void* recv, std::span<const size_t> recv_counts, std::span<const size_t> recv_offsets,
                 CommType type) override;
  void broadcast(void* data, size_t count, CommType type, int root) override;

  void send(const void* data, size_t count, CommType type, int dest, MpiTag tag) override;
  void recv(void* data, size_t count, CommType type, int source, MpiTag tag) override;
  std::unique_ptr<Request> isend(const void* data, size_t count, CommType type, int dest, MpiTag tag) override;
  std::unique_ptr<Request> irecv(void* data, size_t count, CommType type, int source, MpiTag tag) override;
  void sendrecv(const void* send_data, size_t send_count, int dest, void* recv_data, size_t recv_count, int source,
                CommType type, MpiTag tag) override;

  void barrier() override;

  // Used by requests: closes the open isend/irecv group and records their event.
  void flush_pending();
  // Host wait for `event`, watching for asynchronous NCCL errors; `what` names the op.
  void wait_event(cudaEvent_t event, const std::string& what);
  bool query_event(cudaEvent_t event, const std::string& what);

  struct PendingEvent;  // shared by the requests of one group (defined in the .cpp)

 private:
  void check(ncclResult_t rc, const std::string& what);
  void check_cuda(cudaError_t rc, const std::string& what);
  std::string what(const char* op, size_t count, CommType type, int peer = -1) const;
  void check_peer(int peer, const char* op) const;
  std::unique_ptr<Request> record_request(const std::string& what);
  std::unique_ptr<Request> grouped_p2p(bool is_send, void* data, size_t count, CommType type, int peer);

  Communicator& bootstrap_;  // outlives this (constructor contract)
  cudaStream_t stream_;      // not owned
  std::string name_;
  ncclComm_t comm_ = nullptr;
  bool aborted_ = false;
  bool group_open_ = false;
  std::vector<std::shared_ptr<PendingEvent>> pending_;  // requests of the open group
};

ncclDataType_t nccl_datatype(CommType type);
ncclRedOp_t nccl_op(ReduceOp op);

}  // namespace tessera
