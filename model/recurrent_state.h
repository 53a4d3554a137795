// A worker's pool of fixed-size per-sequence states (Griffin / RecurrentGemma): one
// slot per sequence in flight, each holding every local layer's state. The coordinator
// owns which slot belongs to which sequence (as with KV blocks); workers index with the
// slot in the step and copy slots when told to (save / restore).
//
// Per recurrent layer: the conv inputs of the last conv_width - 1 positions
// [conv_width - 1][lru_local] and the RG-LRU state h [lru_local] (f32). Per attention
// layer: rings of the last `window` keys and values, [2 window][head_dim] each (position
// p at rows p % window and p % window + window, so the window is always one contiguous
// range and decode attends in place). The size does not depend on the context length.
#pragma once

#include <cstdint>
#include <vector>

namespace tessera {

class RecurrentStatePool {
 public:
  // floats_per_layer: the state size of each local layer.
  RecurrentStatePool(int64_t n_slots, std::vector<int64_t> floats_per_layer);

  int64_t slots() const { return n_slots_; }
  int64_t bytes() const { return static_cast<int64_t>(data_.size() * sizeof(float)); }
  float* layer(int32_t slot, int64_t layer) { return data_.data() + slot * slot_floats_ + offsets_[layer]; }
  void clear(int32_t slot);                 // a new sequence: zero conv inputs, h, ring
  void copy(int32_t src, int32_t dst);      // throws tessera::Error for a slot out of range
  void check_slot(int32_t slot) const;      // throws tessera::Error naming the slot

 private:
  int64_t n_slots_;
  std::vector<int64_t> offsets_;  // [local layer] float offset within a slot
  int64_t slot_floats_ = 0;
  std::vector<float> data_;       // [n_slots][slot_floats_]
};

}  // namespace tessera
