// A small client of tessera's Cap'n Proto API (schemas/client.capnp, docs/SERVING.md):
// connects to `tessera serve --capnp HOST:PORT`, submits one prompt and prints the
// text to stdout as the tokens stream in; the finish reason and usage go to stderr.
//
//   tessera_capnp_client --connect 127.0.0.1:9000 --prompt "Once upon a time" --max-tokens 40
//   tessera_capnp_client --connect 127.0.0.1:9000 --prompt "Once" --max-tokens 400 --cancel-after 5
//   tessera_capnp_client --connect 127.0.0.1:9000 --stats
//
// Exit status: 0 when the stream finished (stop, length or cancelled), 1 on an error
// (the server's message on stderr), 2 on bad flags.
#include <capnp/ez-rpc.h>
#include <kj/async.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "schemas/client.capnp.h"

namespace {

struct Options {
  std::string connect, prompt = "Once upon a time", api_key, model;
  std::vector<std::string> stop;
  int64_t max_tokens = 16;
  bool has_max_tokens = false;
  float temperature = 0.0f;  // greedy unless asked
  int64_t seed = -1;
  int64_t cancel_after = -1;
  bool chat = false, stats = false, models = false, show_tokens = false, echo = false;
  int32_t top_logprobs = 0;
};

const char kUsage[] =
    "usage: tessera_capnp_client --connect HOST:PORT [--prompt TEXT] [--chat] [--max-tokens N]\n"
    "         [--temperature F] [--seed N] [--stop S]... [--model NAME] [--api-key KEY]\n"
    "         [--cancel-after N] [--show-tokens] [--top-logprobs N] [--echo] [--stats] [--models]\n"
    "  --chat          send the prompt as one user message of a chat\n"
    "  --temperature   default 0 (greedy)\n"
    "  --cancel-after  cancel the request after N tokens have arrived\n"
    "  --show-tokens   also print each token's id and logprob on stderr\n"
    "  --top-logprobs  with --show-tokens: also the N most likely alternatives per token\n"
    "  --echo          print the prompt's per-token logprobs on stderr first\n"
    "  --stats         print the server's statistics and exit\n"
    "  --models        print the served model and exit\n";

// The sink the server streams into. Lives on this program's event loop.
struct Progress {
  int64_t tokens = 0;
  bool cancel_sent = false;
  kj::Maybe<tessera::client::Request::Client> handle;
  kj::Own<kj::PromiseFulfiller<void>> done;
  std::string reason, message;
  int64_t prompt_tokens = 0, completion_tokens = 0;
};

void maybe_cancel(Progress& p, int64_t cancel_after, kj::TaskSet& tasks) {
  if (cancel_after < 0 || p.cancel_sent || p.tokens < cancel_after) return;
  KJ_IF_MAYBE(h, p.handle) {
    p.cancel_sent = true;
    std::cerr << "[cancelling after " << p.tokens << " tokens]" << std::endl;
    tasks.add(h->cancelRequest().send().ignoreResult());
  }
}

class Sink final : public tessera::client::TokenSink::Server {
 public:
  Sink(Progress& p, const Options& o, kj::TaskSet& tasks) : p_(p), o_(o), tasks_(tasks) {}
  ~Sink() {  // released without finish(): the connection dropped
    if (p_.done && p_.done->isWaiting())
      p_.done->reject(KJ_EXCEPTION(DISCONNECTED, "the server dropped the stream before it finished"));
  }

 protected:
  kj::Promise<void> token(TokenContext context) override {
    auto params = context.getParams();
    auto delta = params.getDelta();
    std::fwrite(delta.begin(), 1, delta.size(), stdout);
    std::fflush(stdout);
    if (params.getTokenId() >= 0) {
      ++p_.tokens;
      if (o_.show_tokens) {
        std::cerr << "[token " << params.getTokenId() << " logprob " << params.getLogprob();
        for (auto t : params.getTop()) std::cerr << " | " << t.getTokenId() << " " << t.getLogprob();
        std::cerr << "]" << std::endl;
      }
    }
    maybe_cancel(p_, o_.cancel_after, tasks_);
    return kj::READY_NOW;
  }
  kj::Promise<void> prompt(PromptContext context) override {
    for (auto t : context.getParams().getTokens()) {
      std::cerr << "[prompt " << t.getTokenId() << " logprob " << t.getLogprob();
      for (auto a : t.getTop()) std::cerr << " | " << a.getTokenId() << " " << a.getLogprob();
      std::cerr << "]" << std::endl;
    }
    return kj::READY_NOW;
  }
  kj::Promise<void> finish(FinishContext context) override {
    auto params = context.getParams();
    p_.reason = params.getReason();
    p_.message = params.getMessage();
    p_.prompt_tokens = params.getUsage().getPromptTokens();
    p_.completion_tokens = params.getUsage().getCompletionTokens();
    if (p_.done) p_.done->fulfill();
    return kj::READY_NOW;
  }

 private:
  Progress& p_;
  const Options& o_;
  kj::TaskSet& tasks_;
};

struct LogErrors : kj::TaskSet::ErrorHandler {
  void taskFailed(kj::Exception&& e) override { std::cerr << "error: " << e.getDescription().cStr() << std::endl; }
};

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--connect") o.connect = value();
    else if (a == "--prompt") o.prompt = value();
    else if (a == "--api-key") o.api_key = value();
    else if (a == "--model") o.model = value();
    else if (a == "--stop") o.stop.push_back(value());
    else if (a == "--max-tokens") { o.max_tokens = std::stoll(value()); o.has_max_tokens = true; }
    else if (a == "--temperature") o.temperature = std::stof(value());
    else if (a == "--seed") o.seed = std::stoll(value());
    else if (a == "--cancel-after") o.cancel_after = std::stoll(value());
    else if (a == "--chat") o.chat = true;
    else if (a == "--stats") o.stats = true;
    else if (a == "--models") o.models = true;
    else if (a == "--show-tokens") o.show_tokens = true;
    else if (a == "--top-logprobs") o.top_logprobs = std::stoi(value());
    else if (a == "--echo") o.echo = true;
    else throw std::invalid_argument("unknown flag " + a);
  }
  if (o.connect.empty()) throw std::invalid_argument("--connect HOST:PORT is required");
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    parse(argc, argv, o);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n" << kUsage;
    return 2;
  }
  try {
    capnp::EzRpcClient rpc(o.connect.c_str());
    auto& ws = rpc.getWaitScope();
    auto gate = rpc.getMain<tessera::client::Gate>();
    auto connect = gate.connectRequest();
    connect.setApiKey(o.api_key);
    auto tessera = connect.send().getTessera();

    if (o.stats) {
      auto s = tessera.statsRequest().send().wait(ws).getStats();
      std::cout << "waiting " << s.getWaiting() << "\nrunning " << s.getRunning() << "\nkv_blocks_used "
                << s.getKvBlocksUsed() << "\nkv_blocks_free " << s.getKvBlocksFree() << "\nkv_blocks_cached "
                << s.getKvBlocksCached() << "\nprefix_hit_blocks " << s.getPrefixHitBlocks() << "\nsteps "
                << s.getSteps() << "\npreemptions " << s.getPreemptions() << "\nstep_tokens " << s.getStepTokens()
                << "\nstep_seconds " << s.getStepSeconds() << "\nsubmitted " << s.getSubmitted() << "\nverify_passes "
                << s.getVerifyPasses() << "\ndraft_tokens " << s.getDraftTokens() << "\naccepted_tokens "
                << s.getAcceptedTokens() << std::endl;
      return 0;
    }
    if (o.models) {
      auto r = tessera.modelsRequest().send().wait(ws);
      for (auto m : r.getModels())
        std::cout << m.getId().cStr() << " context " << m.getMaxContext() << " vocab " << m.getVocabSize() << std::endl;
      return 0;
    }

    LogErrors log_errors;
    kj::TaskSet tasks(log_errors);
    Progress progress;
    auto done = kj::newPromiseAndFulfiller<void>();
    progress.done = kj::mv(done.fulfiller);

    auto submit = tessera.submitRequest();
    auto req = submit.initRequest();
    if (!o.model.empty()) req.setModel(o.model);
    if (o.chat) {
      auto m = req.initMessages(1);
      m[0].setRole("user");
      m[0].setContent(o.prompt);
    } else {
      req.setPrompt(o.prompt);
    }
    if (o.has_max_tokens) req.getMaxTokens().setValue(o.max_tokens);
    req.setTemperature(o.temperature);
    req.setTopLogprobs(o.top_logprobs);
    req.setEcho(o.echo);
    if (o.seed >= 0) req.getSeed().setValue(static_cast<uint64_t>(o.seed));
    if (!o.stop.empty()) {
      auto stop = req.initStop(static_cast<unsigned>(o.stop.size()));
      for (size_t i = 0; i < o.stop.size(); ++i) stop.set(static_cast<unsigned>(i), o.stop[i]);
    }
    submit.setSink(kj::heap<Sink>(progress, o, tasks));
    auto response = submit.send().wait(ws);  // throws the server's refusal
    progress.handle = response.getHandle();
    maybe_cancel(progress, o.cancel_after, tasks);
    done.promise.wait(ws);

    std::cerr << "\nfinish: " << progress.reason << " (prompt " << progress.prompt_tokens << " tokens, completion "
              << progress.completion_tokens << " tokens, " << progress.tokens << " received)";
    if (!progress.message.empty()) std::cerr << ": " << progress.message;
    std::cerr << std::endl;
    return progress.reason == "error" ? 1 : 0;
  } catch (const kj::Exception& e) {
    std::cerr << "error: " << e.getDescription().cStr() << std::endl;
    return 1;
  }
}
