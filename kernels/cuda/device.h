// The CUDA device of this process: is there one, which, and what is it.
#pragma once

#include <string>

namespace tessera::kernels::cuda {

// True when at least one CUDA device is usable; otherwise false and *why says what
// the runtime answered (no driver, no device, ...). Never throws: tests call this to
// decide whether to GTEST_SKIP().
bool device_available(std::string* why = nullptr);

// Selects device `index` for this thread (one GPU per rank: the local rank's).
void select_device(int index);

struct DeviceInfo {
  std::string name;
  int sm_count = 0;
  int cc_major = 0, cc_minor = 0;
  size_t total_bytes = 0;
  size_t free_bytes = 0;
};
DeviceInfo device_info();

}  // namespace tessera::kernels::cuda
