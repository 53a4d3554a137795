#include "collectives/mpi_request.h"

#include <glog/logging.h>

#include <exception>

#include "collectives/mpi_error.h"
#include "common/error.h"

namespace tessera {

MpiRequest::MpiRequest(Kind kind, std::string what, MPI_Datatype type)
    : kind_(kind), what_(std::move(what)), type_(type), uncaught_at_start_(std::uncaught_exceptions()) {}

void MpiRequest::add(MPI_Request request, int expected_count) {
  requests_.push_back(request);
  expected_.push_back(expected_count);
}

void MpiRequest::check_status(size_t i, const MPI_Status& status) {
  if (kind_ != Kind::kRecv) return;
  int got = 0;
  mpi_check(MPI_Get_count(&status, type_, &got), what_ + ": MPI_Get_count");
  TESSERA_REQUIRE(got == expected_[i], ErrorKind::kInvalidInput, what_, ": received ", got,
                  " elements, expected ", expected_[i], " (the peers disagree on the message size)");
}

void MpiRequest::wait() {
  for (size_t i = 0; i < requests_.size(); ++i) {
    if (requests_[i] == MPI_REQUEST_NULL) continue;
    MPI_Status status;
    mpi_check(MPI_Wait(&requests_[i], &status), what_);
    requests_[i] = MPI_REQUEST_NULL;  // completed (also on error: MPI frees it)
    check_status(i, status);
  }
}

bool MpiRequest::test() {
  bool all = true;
  for (size_t i = 0; i < requests_.size(); ++i) {
    if (requests_[i] == MPI_REQUEST_NULL) continue;
    int done = 0;
    MPI_Status status;
    mpi_check(MPI_Test(&requests_[i], &done, &status), what_);
    if (!done) {
      all = false;
      continue;
    }
    requests_[i] = MPI_REQUEST_NULL;
    check_status(i, status);
  }
  return all;
}

MpiRequest::~MpiRequest() {
  const bool unwinding = std::uncaught_exceptions() > uncaught_at_start_;
  for (MPI_Request& r : requests_) {
    if (r == MPI_REQUEST_NULL) continue;
    int rc = MPI_SUCCESS;
    switch (kind_) {
      case Kind::kRecv:
        MPI_Cancel(&r);
        rc = MPI_Wait(&r, MPI_STATUS_IGNORE);
        break;
      case Kind::kSend:
      case Kind::kCollective:
        rc = unwinding ? MPI_Request_free(&r) : MPI_Wait(&r, MPI_STATUS_IGNORE);
        break;
    }
    // A destructor cannot throw; the failure that matters was (or will be) reported
    // by the operation that made us unwind.
    if (rc != MPI_SUCCESS) LOG(WARNING) << what_ << ": pending request at destruction: " << mpi_error_string(rc);
  }
}

}  // namespace tessera
