#include "model/recurrent_state.h"

#include <algorithm>

#include "common/error.h"

namespace tessera {

RecurrentStatePool::RecurrentStatePool(int64_t n_slots, std::vector<int64_t> floats_per_layer) : n_slots_(n_slots) {
  TESSERA_REQUIRE(n_slots >= 1, ErrorKind::kInvalidInput, "state slots must be >= 1, got ", n_slots);
  for (int64_t f : floats_per_layer) {
    offsets_.push_back(slot_floats_);
    slot_floats_ += f;
  }
  data_.assign(static_cast<size_t>(n_slots_ * slot_floats_), 0.0f);
}

void RecurrentStatePool::check_slot(int32_t slot) const {
  TESSERA_REQUIRE(slot >= 0 && slot < n_slots_, ErrorKind::kInvalidInput, "state slot ", slot,
                  " is outside the worker's pool of ", n_slots_, " slots");
}

void RecurrentStatePool::clear(int32_t slot) {
  check_slot(slot);
  std::fill_n(data_.data() + slot * slot_floats_, slot_floats_, 0.0f);
}

void RecurrentStatePool::copy(int32_t src, int32_t dst) {
  check_slot(src);
  check_slot(dst);
  if (src != dst) std::copy_n(data_.data() + src * slot_floats_, slot_floats_, data_.data() + dst * slot_floats_);
}

}  // namespace tessera
