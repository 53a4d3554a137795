// Prometheus text-format metrics of the server (docs/SERVING.md, "Metrics"):
// counters and histograms recorded by the HTTP side, plus the serving loop's gauges.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "coordinator/serving_loop.h"

namespace tessera::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  void render(std::string& out, const std::string& name, const std::string& help) const;

 private:
  std::vector<double> bounds_;
  std::vector<int64_t> counts_;  // per bucket (not cumulative); last is +Inf
  double sum_ = 0;
  int64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  void request(const std::string& endpoint, int status);
  void error(const std::string& kind);  // invalid_request, queue_full, auth, not_found, disconnect, internal
  void tokens(int64_t prompt, int64_t generated);
  void ttft(double seconds);
  void itl(double seconds);
  void latency(double seconds);
  std::string render(const LoopStats& loop, const std::string& model) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  std::map<std::string, int64_t> errors_;
  int64_t prompt_tokens_ = 0, generated_tokens_ = 0;
  Histogram ttft_, itl_, latency_;
};

}  // namespace tessera::server
