// A group of one: every collective is a copy or a no-op, so the single-rank path
// (`tessera generate`, unit tests) makes no MPI calls. Also stands for any group of
// size 1 in a larger world (tp = 1 under pp = 2), where MPI would do the same work
// more slowly.
//
// send/recv to oneself go through a mailbox: send copies the message in, recv takes
// the oldest message with the same tag. A recv with nothing to take would wait
// forever, so it throws kInternal instead.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "collectives/communicator.h"

namespace tessera {

class LocalCommunicator final : public Communicator {
 public:
  // world_rank: this process's rank in the world (0 without mpirun).
  explicit LocalCommunicator(std::string name, int world_rank = 0);

  int rank() const override { return 0; }
  int size() const override { return 1; }
  int world_rank(int group_rank) const override;
  const std::string& name() const override { return name_; }

  void allreduce(void* data, size_t count, CommType type, ReduceOp op) override {}
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
  // Completes at once when a message is waiting; otherwise wait() takes it then
  // (the request refers to this communicator and must not outlive it).
  std::unique_ptr<Request> irecv(void* data, size_t count, CommType type, int source, MpiTag tag) override;

  void barrier() override {}

  // Used by the deferred irecv: false when no message with `tag` is waiting.
  bool take(void* data, size_t count, CommType type, MpiTag tag);

 private:
  void check_peer(int peer, const char* op) const;

  struct Message {
    MpiTag tag;
    std::vector<uint8_t> bytes;
  };
  std::string name_;
  int world_rank_;
  std::deque<Message> mailbox_;
};

}  // namespace tessera
