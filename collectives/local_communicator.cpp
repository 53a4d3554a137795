#include "collectives/local_communicator.h"

#include <cstring>

#include "common/error.h"

namespace tessera {

namespace {

class DoneRequest final : public Request {
 public:
  void wait() override {}
  bool test() override { return true; }
};

class LocalRecvRequest final : public Request {
 public:
  LocalRecvRequest(LocalCommunicator& comm, void* data, size_t count, CommType type, MpiTag tag)
      : comm_(comm), data_(data), count_(count), type_(type), tag_(tag) {}
  void wait() override {
    if (done_) return;
    TESSERA_REQUIRE(comm_.take(data_, count_, type_, tag_), ErrorKind::kInternal, comm_.name(),
                    " (local): irecv from self with tag ", static_cast<int>(tag_),
                    " waited with no matching send (would deadlock)");
    done_ = true;
  }
  bool test() override { return done_ = done_ || comm_.take(data_, count_, type_, tag_); }

 private:
  LocalCommunicator& comm_;  // outlives the request (see irecv)
  void* data_;
  size_t count_;
  CommType type_;
  MpiTag tag_;
  bool done_ = false;
};

void copy(void* out, const void* in, size_t bytes) {
  if (bytes != 0 && out != in) std::memmove(out, in, bytes);
}

}  // namespace

LocalCommunicator::LocalCommunicator(std::string name, int world_rank)
    : name_(std::move(name)), world_rank_(world_rank) {}

int LocalCommunicator::world_rank(int group_rank) const {
  check_peer(group_rank, "world_rank of");
  return world_rank_;
}

void LocalCommunicator::check_peer(int peer, const char* op) const {
  TESSERA_REQUIRE(peer == 0, ErrorKind::kInternal, name_, " (local, world rank ", world_rank_, "): ", op, " peer ",
                  peer, " out of range [0, 1)");
}

std::unique_ptr<Request> LocalCommunicator::iallreduce(void*, size_t, CommType, ReduceOp) {
  return std::make_unique<DoneRequest>();
}

void LocalCommunicator::allgather(const void* in, void* out, size_t count, CommType type) {
  copy(out, in, count * comm_type_size(type));
}

void LocalCommunicator::reduce_scatter(const void* in, void* out, size_t count, CommType type, ReduceOp) {
  copy(out, in, count * comm_type_size(type));
}

void LocalCommunicator::alltoallv(const void* send, std::span<const size_t> send_counts,
                                  std::span<const size_t> send_offsets, void* recv,
                                  std::span<const size_t> recv_counts, std::span<const size_t> recv_offsets,
                                  CommType type) {
  TESSERA_REQUIRE(send_counts.size() == 1 && send_offsets.size() == 1 && recv_counts.size() == 1 &&
                      recv_offsets.size() == 1,
                  ErrorKind::kInternal, name_, " (local): alltoallv needs 1 count and offset per side");
  TESSERA_REQUIRE(send_counts[0] == recv_counts[0], ErrorKind::kInvalidInput, name_,
                  " (local): alltoallv sends ", send_counts[0], " elements to itself but expects ", recv_counts[0]);
  const size_t es = comm_type_size(type);
  copy(static_cast<char*>(recv) + recv_offsets[0] * es, static_cast<const char*>(send) + send_offsets[0] * es,
       send_counts[0] * es);
}

void LocalCommunicator::broadcast(void*, size_t, CommType, int root) { check_peer(root, "broadcast root"); }

void LocalCommunicator::send(const void* data, size_t count, CommType type, int dest, MpiTag tag) {
  check_peer(dest, "send to");
  const auto* p = static_cast<const uint8_t*>(data);
  mailbox_.push_back(Message{tag, std::vector<uint8_t>(p, p + count * comm_type_size(type))});
}

void LocalCommunicator::recv(void* data, size_t count, CommType type, int source, MpiTag tag) {
  check_peer(source, "recv from");
  TESSERA_REQUIRE(take(data, count, type, tag), ErrorKind::kInternal, name_, " (local): recv from self with tag ",
                  static_cast<int>(tag), " has no matching send (would deadlock)");
}

bool LocalCommunicator::take(void* data, size_t count, CommType type, MpiTag tag) {
  for (auto it = mailbox_.begin(); it != mailbox_.end(); ++it) {
    if (it->tag != tag) continue;
    const size_t bytes = count * comm_type_size(type);
    TESSERA_REQUIRE(it->bytes.size() == bytes, ErrorKind::kInvalidInput, name_, " (local): received ",
                    it->bytes.size(), " bytes from self, expected ", bytes, " (",
                    count, " x ", comm_type_name(type), ")");
    copy(data, it->bytes.data(), bytes);
    mailbox_.erase(it);
    return true;
  }
  return false;
}

std::unique_ptr<Request> LocalCommunicator::isend(const void* data, size_t count, CommType type, int dest,
                                                  MpiTag tag) {
  send(data, count, type, dest, tag);  // copied: the buffer is free at once
  return std::make_unique<DoneRequest>();
}

std::unique_ptr<Request> LocalCommunicator::irecv(void* data, size_t count, CommType type, int source, MpiTag tag) {
  check_peer(source, "irecv from");
  if (take(data, count, type, tag)) return std::make_unique<DoneRequest>();
  return std::make_unique<LocalRecvRequest>(*this, data, count, type, tag);
}

}  // namespace tessera
