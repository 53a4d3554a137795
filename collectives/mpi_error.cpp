#include "collectives/mpi_error.h"

#include "common/error.h"

namespace tessera {

std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return detail::concat("MPI error ", code);
  return std::string(text, static_cast<size_t>(len));
}

void mpi_check(int rc, const std::string& what) {
  if (rc == MPI_SUCCESS) return;
  int cls = rc;
  if (MPI_Error_class(rc, &cls) != MPI_SUCCESS) cls = rc;
  ErrorKind kind = ErrorKind::kDisconnected;
  switch (cls) {
    case MPI_ERR_TRUNCATE:
      kind = ErrorKind::kInvalidInput;
      break;
    case MPI_ERR_ARG:
    case MPI_ERR_COUNT:
    case MPI_ERR_RANK:
    case MPI_ERR_TAG:
    case MPI_ERR_TYPE:
    case MPI_ERR_OP:
    case MPI_ERR_BUFFER:
    case MPI_ERR_COMM:
    case MPI_ERR_ROOT:
      kind = ErrorKind::kInternal;
      break;
    default:
      break;
  }
  throw Error(kind, detail::concat(what, ": ", mpi_error_string(rc)));
}

}  // namespace tessera
