// A model of how long one step takes, learnt online from the steps the serving loop
// runs, so that the scheduler can bound the step time (and so every running
// sequence's inter-token latency) instead of only the tokens per step.
//
//   seconds ~= c0 + c1 * tokens + c2 * attended
//
// c0: what every step pays whatever its size (reading the weights in a memory-bound
// decode, the control-plane round trip, collectives' latency); c1: the per-token work
// of the linear layers; c2: attention, `attended` = query-key pairs of the step (a
// slice of n tokens starting at position p attends n * p + n * (n + 1) / 2 pairs).
// The coefficients come from recursive least squares with exponential forgetting, so
// the model follows the machine as load changes; negative fits are clamped at
// prediction time (collinear features early on).
#pragma once

#include <array>
#include <cstdint>

namespace tessera {

struct StepShape {
  int64_t tokens = 0;
  double attended = 0;
};

// Query-key pairs of a slice of n new tokens after `pos0` cached positions.
inline double attended_pairs(int64_t pos0, int64_t n) {
  return static_cast<double>(n) * static_cast<double>(pos0) + 0.5 * static_cast<double>(n) * static_cast<double>(n + 1);
}

class StepCostModel {
 public:
  // forgetting: weight of the past per observation (0.9 .. 1; 1 = plain least squares).
  explicit StepCostModel(double forgetting = 0.97);

  void observe(const StepShape& shape, double seconds);
  // Predicted seconds; 0 until ready().
  double predict(const StepShape& shape) const;
  // Enough steps seen to trust predict() (a few steps of different sizes).
  bool ready() const { return observations_ >= kWarmup; }
  int64_t observations() const { return observations_; }
  std::array<double, 3> coefficients() const { return theta_; }

 private:
  static constexpr int kWarmup = 8;
  // Features scaled to similar magnitudes so the recursion stays well conditioned.
  static std::array<double, 3> features(const StepShape& shape);

  double forgetting_;
  std::array<double, 3> theta_{};
  std::array<std::array<double, 3>, 3> p_{};  // inverse information matrix
  int64_t observations_ = 0;
};

}  // namespace tessera
