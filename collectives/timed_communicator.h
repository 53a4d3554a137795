// A Communicator decorator that adds up the wall time spent inside blocking calls (and
// in waits on the requests it hands out), so a step's time can be split into compute
// and communication (`tessera bench --tp/--pp`). Single-threaded use, like the
// communicator it wraps (the worker's compute thread).
#pragma once

#include <chrono>
#include <memory>

#include "collectives/communicator.h"

namespace tessera {

class TimedCommunicator final : public Communicator {
 public:
  explicit TimedCommunicator(Communicator& inner) : inner_(inner) {}

  // Seconds spent since the previous call.
  double take_seconds() {
    const double s = seconds_;
    seconds_ = 0;
    return s;
  }

  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  int world_rank(int group_rank) const override { return inner_.world_rank(group_rank); }
  const std::string& name() const override { return inner_.name(); }

  void allreduce(void* data, size_t count, CommType type, ReduceOp op) override {
    Timer t(seconds_);
    inner_.allreduce(data, count, type, op);
  }
  std::unique_ptr<Request> iallreduce(void* data, size_t count, CommType type, ReduceOp op) override {
    return wrap(inner_.iallreduce(data, count, type, op));
  }
  void allgather(const void* in, void* out, size_t count, CommType type) override {
    Timer t(seconds_);
    inner_.allgather(in, out, count, type);
  }
  void reduce_scatter(const void* in, void* out, size_t count, CommType type, ReduceOp op) override {
    Timer t(seconds_);
    inner_.reduce_scatter(in, out, count, type, op);
  }
  void alltoallv(const void* send, std::span<const size_t> send_counts, std::span<const size_t> send_offsets,
                 void* recv, std::span<const size_t> recv_counts, std::span<const size_t> recv_offsets,
                 CommType type) override {
    Timer t(seconds_);
    inner_.alltoallv(send, send_counts, send_offsets, recv, recv_counts, recv_offsets, type);
  }
  void broadcast(void* data, size_t count, CommType type, int root) override {
    Timer t(seconds_);
    inner_.broadcast(data, count, type, root);
  }
  void send(const void* data, size_t count, CommType type, int dest, MpiTag tag) override {
    Timer t(seconds_);
    inner_.send(data, count, type, dest, tag);
  }
  void recv(void* data, size_t count, CommType type, int source, MpiTag tag) override {
    Timer t(seconds_);
    inner_.recv(data, count, type, source, tag);
  }
  std::unique_ptr<Request> isend(const void* data, size_t count, CommType type, int dest, MpiTag tag) override {
    return wrap(inner_.isend(data, count, type, dest, tag));
  }
  std::unique_ptr<Request> irecv(void* data, size_t count, CommType type, int source, MpiTag tag) override {
    return wrap(inner_.irecv(data, count, type, source, tag));
  }
  void barrier() override {
    Timer t(seconds_);
    inner_.barrier();
  }

 private:
  struct Timer {
    explicit Timer(double& sink) : sink_(sink), t0_(std::chrono::steady_clock::now()) {}
    ~Timer() { sink_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }
    double& sink_;
    std::chrono::steady_clock::time_point t0_;
  };
  class TimedRequest final : public Request {
   public:
    TimedRequest(std::unique_ptr<Request> inner, double& sink) : inner_(std::move(inner)), sink_(sink) {}
    void wait() override {
      Timer t(sink_);
      inner_->wait();
    }
    bool test() override { return inner_->test(); }

   private:
    std::unique_ptr<Request> inner_;
    double& sink_;
  };
  std::unique_ptr<Request> wrap(std::unique_ptr<Request> r) {
    return std::make_unique<TimedRequest>(std::move(r), seconds_);
  }

  Communicator& inner_;
  double seconds_ = 0;
};

}  // namespace tessera
