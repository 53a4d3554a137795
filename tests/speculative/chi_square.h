// Chi-square tests for the speculative distribution tests: fixed significance, fixed
// seeds, so each test is deterministic.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <vector>

namespace tessera::testing {

// Upper critical value of chi-square with df degrees of freedom at significance 0.001
// (Wilson-Hilferty; accurate to a fraction of a percent for df >= 3).
inline double chi2_critical_001(int df) {
  const double z = 3.0902;  // standard normal upper 0.001 quantile
  const double h = 2.0 / (9.0 * df);
  return df * std::pow(1.0 - h + z * std::sqrt(h), 3.0);
}

struct ChiSquare {
  double statistic = 0;
  int df = 0;
  bool rejects() const { return df > 0 && statistic > chi2_critical_001(df); }
};

// Goodness of fit of counts (n draws) to probabilities p; cells with expected count < 5
// are pooled into one.
inline ChiSquare chi_square_fit(const std::vector<int64_t>& counts, const std::vector<double>& p) {
  int64_t n = 0;
  for (int64_t c : counts) n += c;
  ChiSquare out;
  double pooled_obs = 0, pooled_exp = 0;
  int cells = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double e = p[i] * static_cast<double>(n);
    if (e < 5) {
      pooled_obs += static_cast<double>(counts[i]);
      pooled_exp += e;
      continue;
    }
    out.statistic += (counts[i] - e) * (counts[i] - e) / e;
    ++cells;
  }
  if (pooled_exp > 0) {
    out.statistic += (pooled_obs - pooled_exp) * (pooled_obs - pooled_exp) / pooled_exp;
    ++cells;
  } else if (pooled_obs > 0) {
    out.statistic = 1e30;  // draws where p is zero
  }
  out.df = cells - 1;
  return out;
}

// Two samples of equal size: are they from the same distribution? Cells with fewer than
// 10 draws in both samples together are pooled.
inline ChiSquare chi_square_two_sample(const std::map<int32_t, int64_t>& a, const std::map<int32_t, int64_t>& b) {
  std::map<int32_t, std::pair<double, double>> cells;
  for (auto [k, v] : a) cells[k].first += static_cast<double>(v);
  for (auto [k, v] : b) cells[k].second += static_cast<double>(v);
  ChiSquare out;
  double pa = 0, pb = 0;
  int n = 0;
  auto add = [&](double x, double y) {
    out.statistic += (x - y) * (x - y) / (x + y);
    ++n;
  };
  for (auto& [k, v] : cells) {
    if (v.first + v.second < 10) {
      pa += v.first;
      pb += v.second;
    } else {
      add(v.first, v.second);
    }
  }
  if (pa + pb > 0) add(pa, pb);
  out.df = n - 1;
  return out;
}

}  // namespace tessera::testing
