// Request over one or more MPI requests (a large message is split into several
// calls; see MpiCommunicator). Internal to the MPI backend.
//
// Destruction while pending (the caller did not wait, usually because an exception is
// unwinding the stack):
//   - receives are cancelled (MPI_Cancel + MPI_Wait: cancelling a receive is prompt);
//   - sends and collectives cannot be cancelled reliably (Open MPI's ob1 ignores
//     cancel of a send, and a nonblocking collective is never cancellable). During
//     normal destruction they are waited for, which keeps the buffer contract; while an
//     exception unwinds they are released with MPI_Request_free, because the peer
//     that would complete them may be the one that failed, and waiting would hang.
//     The job is failing at that point; the coordinator tears it down.
#pragma once

#include <mpi.h>

#include <string>
#include <vector>

#include "collectives/communicator.h"

namespace tessera {

class MpiRequest final : public Request {
 public:
  enum class Kind { kSend, kRecv, kCollective };

  // `what` names group, operation and peer for error messages. For kRecv,
  // expected_counts[i] is the element count request i must deliver (a shorter message
  // is a size mismatch between the peers, reported like a truncation).
  MpiRequest(Kind kind, std::string what, MPI_Datatype type);
  ~MpiRequest() override;

  // Takes ownership of one started MPI request.
  void add(MPI_Request request, int expected_count);

  void wait() override;
  bool test() override;

 private:
  void check_status(size_t i, const MPI_Status& status);

  Kind kind_;
  std::string what_;
  MPI_Datatype type_;
  std::vector<MPI_Request> requests_;
  std::vector<int> expected_;
  int uncaught_at_start_;
};

}  // namespace tessera
