// The data plane: one Communicator per group of ranks (a TP group, the PP neighbours,
// an EP group, a CP ring). Model code and workers call these, never MPI_* or nccl*
// directly. An interface with no fields (backends: MPI always, NCCL when built with
// CUDA); ranks are numbered 0..size()-1 WITHIN the group.
//
// Errors: a failed or lost peer raises tessera::Error(kDisconnected) naming the group,
// the operation and the peer's world rank where known; nothing aborts the process.
// Blocking calls return when this rank's part is complete. Non-blocking calls return
// a Request; the buffers must stay untouched until wait() returns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "collectives/tags.h"

namespace tessera {

enum class ReduceOp { kSum, kMax, kMin };

// Element types the collectives move (f32 activations/logits, i32 ids, raw bytes).
enum class CommType { kF32, kI32, kI64, kU8 };

// Bytes per element and a name for messages ("f32").
inline size_t comm_type_size(CommType t) {
  switch (t) {
    case CommType::kF32: return 4;
    case CommType::kI32: return 4;
    case CommType::kI64: return 8;
    case CommType::kU8: return 1;
  }
  return 0;
}
inline const char* comm_type_name(CommType t) {
  switch (t) {
    case CommType::kF32: return "f32";
    case CommType::kI32: return "i32";
    case CommType::kI64: return "i64";
    case CommType::kU8: return "u8";
  }
  return "?";
}

class Request {
 public:
  virtual ~Request() = default;
  virtual void wait() = 0;   // throws tessera::Error(kDisconnected) on failure
  virtual bool test() = 0;   // true when complete (then wait() returns at once)
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;             // within the group
  virtual int size() const = 0;
  virtual int world_rank(int group_rank) const = 0;
  virtual const std::string& name() const = 0;  // "tp", "pp", "world", ... for messages

  // In place over `count` elements of `type`.
  virtual void allreduce(void* data, size_t count, CommType type, ReduceOp op) = 0;
  virtual std::unique_ptr<Request> iallreduce(void* data, size_t count, CommType type, ReduceOp op) = 0;
  // out holds size() * count elements, rank r's contribution at r * count.
  virtual void allgather(const void* in, void* out, size_t count, CommType type) = 0;
  // in holds size() * count elements; rank r receives the reduction of block r.
  virtual void reduce_scatter(const void* in, void* out, size_t count, CommType type, ReduceOp op) = 0;
  // Variable all-to-all: send_counts[r] elements to rank r from send at send_offsets[r];
  // recv likewise. Counts and offsets in elements.
  virtual void alltoallv(const void* send, std::span<const size_t> send_counts, std::span<const size_t> send_offsets,
                         void* recv, std::span<const size_t> recv_counts, std::span<const size_t> recv_offsets,
                         CommType type) = 0;
  virtual void broadcast(void* data, size_t count, CommType type, int root) = 0;

  virtual void send(const void* data, size_t count, CommType type, int dest, MpiTag tag) = 0;
  virtual void recv(void* data, size_t count, CommType type, int source, MpiTag tag) = 0;
  virtual std::unique_ptr<Request> isend(const void* data, size_t count, CommType type, int dest, MpiTag tag) = 0;
  virtual std::unique_ptr<Request> irecv(void* data, size_t count, CommType type, int source, MpiTag tag) = 0;

  // Exchange with two peers at once (a ring shift: send to dest, receive from source).
  // Backends that cannot overlap a separate send and recv (NCCL: both would block the
  // stream) override this with a grouped call; the default posts both and waits.
  virtual void sendrecv(const void* send_data, size_t send_count, int dest, void* recv_data, size_t recv_count,
                        int source, CommType type, MpiTag tag) {
    auto r = irecv(recv_data, recv_count, type, source, tag);
    auto s = isend(send_data, send_count, type, dest, tag);
    r->wait();
    s->wait();
  }

  virtual void barrier() = 0;
};

// Convenience wrappers for the common f32 case.
inline void allreduce_sum(Communicator& c, float* data, size_t n) { c.allreduce(data, n, CommType::kF32, ReduceOp::kSum); }

}  // namespace tessera
