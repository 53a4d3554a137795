// The OpenAI-compatible HTTP API on the coordinator (docs/SERVING.md), on kj-http. The
// server runs its own KJ event loop on its own thread; requests go to the ServingLoop
// (another thread) and their events come back through RequestStreams, woken with
// cross-thread promises, so nothing blocking ever runs on the event loop.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "coordinator/serving_loop.h"
#include "server/metrics.h"
#include "server/openai_api.h"
#include "tokenizer/tokenizer.h"

namespace tessera::server {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                    // 0: an ephemeral port (see HttpServer::port())
  std::string api_key;                // empty: no authentication
  std::string model_name;
  std::string chat_template = "plain";
  int64_t max_body_bytes = 1 << 20;
  int retry_after_seconds = 1;
  ApiLimits limits;
};

class HttpServer {
 public:
  // loop, tokenizer and metrics must outlive the server.
  HttpServer(HttpServerOptions options, ServingLoop& loop, const Tokenizer& tokenizer, Metrics& metrics);
  ~HttpServer();  // stop()

  // Binds and starts serving on a new thread; returns the bound port. Throws
  // tessera::Error when the address cannot be bound.
  int start();
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

}  // namespace tessera::server
