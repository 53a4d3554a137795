// Turning an MPI return code into a tessera::Error with context. Internal to the MPI
// backend (requires MPI_ERRORS_RETURN on the communicator, else MPI aborts first).
#pragma once

#include <mpi.h>

#include <string>

namespace tessera {

// The library's text for an MPI error code ("MPI_ERR_TRUNCATE: message truncated").
std::string mpi_error_string(int code);

// Throws tessera::Error when rc != MPI_SUCCESS: "<what>: <MPI text>". The kind follows
// the error class: truncation is the peers disagreeing on a size (kInvalidInput),
// argument errors are our bugs (kInternal), anything else is a lost or failed peer
// (kDisconnected).
void mpi_check(int rc, const std::string& what);

}  // namespace tessera
