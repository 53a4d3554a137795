// The Cap'n Proto client API of `tessera serve --capnp HOST:PORT` (schemas/client.capnp,
// docs/SERVING.md). Like the HTTP server it runs its own KJ event loop on its own
// thread and submits to the same ServingLoop; events come back through RequestStreams,
// woken with cross-thread promises, and go to each client's TokenSink capability.
// Requests are validated by the HTTP API's parser (server/openai_api.h).
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "coordinator/serving_loop.h"
#include "server/metrics.h"
#include "server/openai_api.h"
#include "tokenizer/tokenizer.h"

namespace tessera::server {

struct CapnpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;                       // 0: an ephemeral port (start() returns it)
  std::string api_key;                // empty: Gate.connect accepts any key
  std::string model_name;
  std::string chat_template = "plain";
  ApiLimits limits;
};

class CapnpServer {
 public:
  // loop, tokenizer and metrics must outlive the server.
  CapnpServer(CapnpServerOptions options, ServingLoop& loop, const Tokenizer& tokenizer, Metrics& metrics);
  ~CapnpServer();  // stop()

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
