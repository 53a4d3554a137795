// The MPI backend of Communicator over one MPI_Comm it owns (MPI_Comm_free on
// destruction: destroy every MpiCommunicator before the MpiContext).
//
// MPI counts are int. An operation on a contiguous buffer larger than
// max_count_per_call elements (default INT_MAX) is split into several calls: both
// sides of a send/recv split identically because they pass the same count, and MPI
// keeps messages with the same (source, tag, communicator) in order. allgather,
// reduce_scatter and alltoallv lay blocks out by rank, so they cannot be split that
// way; a count or offset over the limit is rejected with kUnsupported.
#pragma once

#include <mpi.h>

#include <climits>
#include <memory>
#include <string>
#include <vector>

#include "collectives/communicator.h"

namespace tessera {

class MpiCommunicator final : public Communicator {
 public:
  static constexpr size_t kMaxCountPerCall = INT_MAX;

  // Takes ownership of `comm` and sets MPI_ERRORS_RETURN on it. `name` ("tp", "pp",
  // "cp", "ep", "world") prefixes every error message.
  MpiCommunicator(MPI_Comm comm, std::string name, size_t max_count_per_call = kMaxCountPerCall);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  // Collective over `parent`: MPI_Comm_split / MPI_Comm_dup, owned by the result.
  static std::unique_ptr<MpiCommunicator> split(MPI_Comm parent, int color, int key, std::string name,
                                                size_t max_count_per_call = kMaxCountPerCall);
  static std::unique_ptr<MpiCommunicator> dup(MPI_Comm parent, std::string name,
                                              size_t max_count_per_call = kMaxCountPerCall);

  MPI_Comm comm() const { return comm_; }
  // "tp (world ranks 0,1)" for messages.
  const std::string& label() const { return label_; }

  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(world_ranks_.size()); }
  int world_rank(int group_rank) const override;
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

  void barrier() override;

 private:
  // "tp (world ranks 0,1): <op>[ with group rank g (world rank w)], <count> x <type>"
  std::string what(const char* op, size_t count, CommType type, int peer = -1) const;
  void check_peer(int peer, const char* op) const;
  // Rejects counts that one MPI call cannot carry (see the header comment).
  void check_unsplittable(size_t count, const char* op) const;

  MPI_Comm comm_;
  std::string name_;
  std::string label_;
  size_t max_count_;
  int rank_ = 0;
  std::vector<int> world_ranks_;  // group rank -> world rank
};

// MPI datatype and operation for the interface enums.
MPI_Datatype mpi_datatype(CommType type);
MPI_Op mpi_op(ReduceOp op);

}  // namespace tessera
