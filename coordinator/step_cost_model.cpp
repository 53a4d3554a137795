#include "coordinator/step_cost_model.h"

#include <algorithm>

namespace tessera {

namespace {
constexpr double kTokenScale = 1.0 / 64;    // features near 1 for typical steps
constexpr double kPairScale = 1.0 / 65536;
}  // namespace

StepCostModel::StepCostModel(double forgetting) : forgetting_(std::clamp(forgetting, 0.5, 1.0)) {
  for (int i = 0; i < 3; ++i) p_[i][i] = 1e3;  // weak prior: coefficients unknown
}

std::array<double, 3> StepCostModel::features(const StepShape& shape) {
  return {1.0, static_cast<double>(shape.tokens) * kTokenScale, shape.attended * kPairScale};
}

void StepCostModel::observe(const StepShape& shape, double seconds) {
  if (shape.tokens <= 0 || !(seconds >= 0)) return;
  const auto x = features(shape);
  // Standard RLS update: k = P x / (lambda + x' P x); theta += k (y - x' theta);
  // P = (P - k x' P) / lambda.
  std::array<double, 3> px{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) px[i] += p_[i][j] * x[j];
  double denom = forgetting_;
  for (int i = 0; i < 3; ++i) denom += x[i] * px[i];
  std::array<double, 3> k{};
  for (int i = 0; i < 3; ++i) k[i] = px[i] / denom;
  double err = seconds;
  for (int i = 0; i < 3; ++i) err -= x[i] * theta_[i];
  for (int i = 0; i < 3; ++i) theta_[i] += k[i] * err;
  std::array<std::array<double, 3>, 3> np{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) np[i][j] = (p_[i][j] - k[i] * px[j]) / forgetting_;
  // Keep P symmetric and bounded (forgetting with unexciting inputs can blow it up).
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) p_[i][j] = std::clamp(0.5 * (np[i][j] + np[j][i]), -1e6, 1e6);
  ++observations_;
}

double StepCostModel::predict(const StepShape& shape) const {
  if (!ready()) return 0;
  const auto x = features(shape);
  double y = 0;
  for (int i = 0; i < 3; ++i) y += std::max(0.0, theta_[i]) * x[i];
  return y;
}

}  // namespace tessera
