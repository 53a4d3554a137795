#include "server/capnp_server.h"

#include <capnp/rpc-twoparty.h>
#include <glog/logging.h>
#include <kj/async-io.h>

#include <atomic>
#include <chrono>
#include <future>
#include <limits>
#include <mutex>
#include <random>

#include "common/error.h"
#include "common/json.h"
#include "rpc/remote_error.h"
#include "schemas/client.capnp.h"

namespace tessera::server {

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void refuse(ErrorKind kind, const std::string& message) {
  kj::throwFatalException(rpc::to_kj_exception(kind, message));
}

// ApiError (the HTTP API's validation) -> a capnp exception with the same message.
[[noreturn]] void refuse(const ApiError& e) {
  std::string message = e.what();
  if (!e.param.empty() && message.find(e.param) == std::string::npos) message += " (field '" + e.param + "')";
  refuse(e.status == 404 ? ErrorKind::kNotFound : e.status == 429 ? ErrorKind::kResource : ErrorKind::kInvalidInput,
         message);
}

std::string text(capnp::Text::Reader t, const char* field) {
  std::string s(t.cStr(), t.size());
  if (!valid_utf8(s)) refuse(ErrorKind::kInvalidInput, std::string(field) + " is not valid UTF-8");
  return s;
}

// Fulfils a cross-thread promise once.
struct Waker {
  std::mutex mu;
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> fulfiller;
  void fire() {
    std::lock_guard<std::mutex> lock(mu);
    if (fulfiller) {
      fulfiller->fulfill();
      fulfiller = nullptr;
    }
  }
};

}  // namespace

// Shared by every connection; lives on the server thread.
struct CapnpServer::Impl : public kj::TaskSet::ErrorHandler {
  Impl(CapnpServerOptions o, ServingLoop& l, const Tokenizer& t, Metrics& m)
      : options(std::move(o)), loop(l), tok(t), metrics(m) {
    for (int32_t id = 0; id < tok.vocab_size(); ++id)
      if (tok.is_eos(id)) stop_tokens.push_back(id);
  }

  CapnpServerOptions options;
  ServingLoop& loop;
  const Tokenizer& tok;
  Metrics& metrics;
  std::vector<int32_t> stop_tokens;
  std::atomic<int64_t> submitted{0};
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> shutdown;  // set on the server thread
  kj::TaskSet* tasks = nullptr;                             // the server thread's, while it runs

  void taskFailed(kj::Exception&& e) override { LOG(WARNING) << "capnp client API: " << e.getDescription().cStr(); }

  // One submitted request (one sequence) and its sink.
  struct Job {
    Impl* server = nullptr;
    client::TokenSink::Client sink;
    std::shared_ptr<RequestStream> stream;
    uint64_t seq = 0;
    std::unique_ptr<StreamDecoder> decoder;
    std::vector<std::string> stop;
    size_t max_stop = 0;
    std::string text;  // generated text (after stop truncation)
    size_t sent = 0;   // bytes of text already sent
    int64_t prompt_tokens = 0, generated = 0;
    std::string finish, error;
    bool done = false;
    bool echo = false;           // prompt logprobs go to TokenSink.prompt first
    std::vector<int32_t> prompt;
    std::vector<PromptLogprob> prompt_logprobs;
    Clock::time_point arrived, last_token;

    explicit Job(client::TokenSink::Client s) : sink(kj::mv(s)) {}
    ~Job() {
      if (!done && seq != 0) server->loop.cancel(seq);
    }
  };

  kj::Promise<void> pump(std::shared_ptr<Job> job) {
    auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
    auto waker = std::make_shared<Waker>();
    waker->fulfiller = kj::mv(paf.fulfiller);
    job->stream->on_ready([waker] { waker->fire(); });
    return paf.promise.then([this, job]() -> kj::Promise<void> {
      kj::Vector<kj::Promise<void>> sent;
      bool finished = false;
      for (StreamEvent& se : job->stream->take()) {
        if (job->done || finished) break;
        const SequenceEvent& e = se.event;
        for (const auto& p : e.prompt_logprobs) job->prompt_logprobs.push_back(p);
        if (job->echo && job->prompt_logprobs.size() + 1 >= job->prompt.size()) {
          job->echo = false;  // every prompt position has its logprob: send them, once
          sent.add(send_prompt(*job));
        }
        if (e.token && job->finish.empty()) {
          if (job->generated == 0) metrics.ttft(std::chrono::duration<double>(se.at - job->arrived).count());
          else metrics.itl(std::chrono::duration<double>(se.at - job->last_token).count());
          job->last_token = se.at;
          ++job->generated;
          job->text += job->decoder->push(e.token->token);
          if (!job->stop.empty()) {
            const size_t from = job->sent >= job->max_stop ? job->sent - job->max_stop : 0;
            size_t best = std::string::npos;
            for (const auto& s : job->stop) {
              const size_t at = job->text.find(s, from);
              if (at != std::string::npos) best = std::min(best, at);
            }
            if (best != std::string::npos) {
              job->text.resize(best);
              job->finish = "stop";
              loop.cancel(job->seq, FinishReason::kStop);
            }
          }
          sent.add(send_token(*job, e.token->token, e.token->logprob, &e.token->top));
        }
        if (e.finish != FinishReason::kNone && job->finish.empty()) {
          switch (e.finish) {
            case FinishReason::kStop: job->finish = "stop"; break;
            case FinishReason::kLength: job->finish = "length"; break;
            case FinishReason::kCancelled: job->finish = "cancelled"; break;
            case FinishReason::kError:
              job->finish = "error";
              job->error = se.error.empty() ? "the request could not be served" : se.error;
              break;
            case FinishReason::kNone: break;
          }
          if (e.finish != FinishReason::kError) job->text += job->decoder->finish();
        }
        if (!job->finish.empty()) finished = true;
      }
      if (finished) {
        job->done = true;
        if (job->text.size() > job->sent) sent.add(send_token(*job, -1, 0.0f));
        return kj::joinPromises(sent.releaseAsArray()).then([this, job] { return send_finish(job); });
      }
      // Wait for the sink's flow control before taking more events.
      return kj::joinPromises(sent.releaseAsArray()).then([this, job] { return pump(job); });
    });
  }

  // Sends the text that is safe to show now (all of it when done; else all but a tail
  // that might begin a stop string).
  kj::Promise<void> send_prompt(Job& job) {
    auto req = job.sink.promptRequest();
    auto list = req.initTokens(static_cast<unsigned>(job.prompt.size()));
    for (size_t i = 0; i < job.prompt.size(); ++i) {
      auto t = list[static_cast<unsigned>(i)];
      t.setTokenId(job.prompt[i]);
      if (i == 0 || i - 1 >= job.prompt_logprobs.size()) {
        t.setLogprob(std::numeric_limits<float>::quiet_NaN());
        continue;
      }
      const PromptLogprob& p = job.prompt_logprobs[i - 1];
      t.setLogprob(p.logprob);
      auto top = t.initTop(static_cast<unsigned>(p.top.size()));
      for (size_t j = 0; j < p.top.size(); ++j) {
        top[static_cast<unsigned>(j)].setTokenId(p.top[j].token);
        top[static_cast<unsigned>(j)].setLogprob(p.top[j].logprob);
      }
    }
    return req.send().ignoreResult();
  }

  kj::Promise<void> send_token(Job& job, int32_t token, float logprob,
                               const std::vector<TokenLogprob>* top = nullptr) {
    size_t safe = job.text.size();
    if (!job.done && job.finish.empty()) {
      for (const auto& s : job.stop)
        for (size_t k = std::min(s.size() - 1, job.text.size()); k > 0; --k)
          if (job.text.compare(job.text.size() - k, k, s, 0, k) == 0) {
            safe = std::min(safe, job.text.size() - k);
            break;
          }
    }
    std::string delta;
    if (safe > job.sent) {
      delta = job.text.substr(job.sent, safe - job.sent);
      job.sent = safe;
    }
    auto req = job.sink.tokenRequest();
    req.setDelta(capnp::Text::Reader(delta.data(), delta.size()));
    req.setTokenId(token);
    req.setLogprob(logprob);
    if (top != nullptr && !top->empty()) {
      auto list = req.initTop(static_cast<unsigned>(top->size()));
      for (size_t j = 0; j < top->size(); ++j) {
        list[static_cast<unsigned>(j)].setTokenId((*top)[j].token);
        list[static_cast<unsigned>(j)].setLogprob((*top)[j].logprob);
      }
    }
    return req.send();
  }

  kj::Promise<void> send_finish(std::shared_ptr<Job> job) {
    metrics.tokens(job->prompt_tokens, job->generated);
    metrics.latency(std::chrono::duration<double>(Clock::now() - job->arrived).count());
    if (!job->error.empty()) metrics.error("internal");
    auto req = job->sink.finishRequest();
    req.setReason(job->finish);
    req.setMessage(job->error);
    auto u = req.initUsage();
    u.setPromptTokens(job->prompt_tokens);
    u.setCompletionTokens(job->generated);
    u.setTotalTokens(job->prompt_tokens + job->generated);
    return req.send().ignoreResult().attach(kj::mv(job));
  }

  // Validates a request exactly as the equivalent HTTP body, and submits it.
  std::shared_ptr<Job> submit(client::CompletionRequest::Reader in, client::TokenSink::Client sink) {
    const auto arrived = Clock::now();
    const bool chat = in.hasMessages() && in.getMessages().size() > 0;
    const bool has_tokens = in.hasPromptTokens() && in.getPromptTokens().size() > 0;
    const bool has_text = in.getPrompt().size() > 0;
    if (chat && (has_tokens || has_text))
      refuse(ErrorKind::kInvalidInput, "give one of prompt, promptTokens or messages, not several (field 'prompt')");
    if (has_tokens && has_text)
      refuse(ErrorKind::kInvalidInput, "give one of prompt or promptTokens, not both (field 'prompt')");
    Json body = Json::object();
    body.set("model", Json::string(in.getModel().size() > 0 ? text(in.getModel(), "model") : options.model_name));
    if (chat) {
      Json messages = Json::array();
      for (auto m : in.getMessages()) {
        Json o = Json::object();
        o.set("role", Json::string(text(m.getRole(), "messages.role")));
        o.set("content", Json::string(text(m.getContent(), "messages.content")));
        messages.push_back(std::move(o));
      }
      body.set("messages", std::move(messages));
    } else if (has_tokens) {
      Json ids = Json::array();
      for (int32_t id : in.getPromptTokens()) ids.push_back(Json::integer(id));
      body.set("prompt", std::move(ids));
    } else {
      body.set("prompt", Json::string(text(in.getPrompt(), "prompt")));
    }
    if (in.getMaxTokens().isValue()) body.set("max_tokens", Json::integer(in.getMaxTokens().getValue()));
    body.set("temperature", Json::number(in.getTemperature()));
    body.set("top_p", Json::number(in.getTopP()));
    body.set("top_k", Json::integer(in.getTopK()));
    if (in.getSeed().isValue()) body.set("seed", Json::integer(static_cast<int64_t>(std::min<uint64_t>(in.getSeed().getValue(), INT64_MAX))));
    if (in.getTopLogprobs() != 0 || in.getEcho()) {
      // The HTTP API's fields, so the same limits and messages apply.
      if (chat) {
        body.set("logprobs", Json::boolean(true));
        body.set("top_logprobs", Json::integer(in.getTopLogprobs()));
      } else {
        body.set("logprobs", Json::integer(in.getTopLogprobs()));
      }
    }
    if (in.getEcho()) {
      if (chat) refuse(ErrorKind::kInvalidInput, "echo is for completions, not chat (field 'echo')");
      body.set("echo", Json::boolean(true));
    }
    if (in.hasStop() && in.getStop().size() > 0) {
      Json stop = Json::array();
      for (auto s : in.getStop()) stop.push_back(Json::string(text(s, "stop")));
      body.set("stop", std::move(stop));
    }
    CompletionRequest r;
    std::vector<int32_t> prompt;
    try {
      r = parse_completion_request(body.dump(), chat, options.limits);
      if (chat) {
        const std::string rendered = render_chat(r.messages, options.chat_template,
                                                 tok.bos_id() >= 0 ? tok.id_to_piece(tok.bos_id()) : "",
                                                 tok.eos_id() >= 0 ? tok.id_to_piece(tok.eos_id()) : "");
        prompt = tok.encode(rendered, true, /*parse_special=*/true);
      } else if (!r.prompt_tokens.empty()) {
        prompt = r.prompt_tokens[0];
        check_prompt_token_ids(prompt, tok.vocab_size());
      } else {
        prompt = tok.encode(r.prompts.at(0), /*add_special=*/true);
        if (prompt.empty() && tok.bos_id() >= 0) prompt.push_back(tok.bos_id());
      }
      check_prompt_fits(prompt.size(), r, options.limits.max_context, chat ? "messages" : "prompt");
    } catch (const ApiError& e) {
      metrics.error(e.status == 404 ? "not_found" : "invalid_request");
      refuse(e);
    }
    const int64_t ctx = options.limits.max_context;
    SequenceRequest sr;
    sr.prompt = prompt;
    sr.max_tokens = default_max_tokens(r, chat, ctx, prompt.size());
    sr.sampling.temperature = r.temperature;
    sr.sampling.top_p = r.top_p;
    sr.sampling.top_k = r.top_k;
    sr.sampling.n_logprobs = std::max<int32_t>(0, r.logprobs);  // TokenSink.token's logprob (+ top)
    sr.prompt_logprobs = r.echo;
    sr.rng_state = in.getSeed().isValue() ? in.getSeed().getValue()
                                          : std::random_device{}() * 0x9E3779B97F4A7C15ull + 1;
    if (sr.rng_state == 0) sr.rng_state = 1;
    sr.stop_tokens = stop_tokens;

    auto job = std::make_shared<Job>(kj::mv(sink));
    job->server = this;
    job->stop = r.stop;
    for (const auto& s : r.stop) job->max_stop = std::max(job->max_stop, s.size());
    job->prompt_tokens = static_cast<int64_t>(prompt.size());
    job->echo = r.echo;
    if (r.echo) job->prompt = prompt;
    job->decoder = std::make_unique<StreamDecoder>(tok);
    for (int32_t id : prompt) (void)job->decoder->push(id);  // the leading-space rule, as over HTTP
    job->arrived = job->last_token = arrived;
    job->stream = loop.submit(std::move(sr), &job->seq);
    if (!job->stream) {
      job->seq = 0;
      metrics.error("queue_full");
      refuse(ErrorKind::kResource, "the server is busy: the request queue is full, retry later");
    }
    metrics.request("capnp_submit", 200);
    ++submitted;
    return job;
  }
};

namespace {

using Impl = CapnpServer::Impl;

class RequestImpl final : public client::Request::Server {
 public:
  explicit RequestImpl(std::shared_ptr<Impl::Job> job) : job_(std::move(job)) {}

 protected:
  kj::Promise<void> cancel(CancelContext) override {
    if (!job_->done) job_->server->loop.cancel(job_->seq, FinishReason::kCancelled);
    return kj::READY_NOW;
  }
  kj::Promise<void> id(IdContext context) override {
    context.getResults().setId(job_->seq);
    return kj::READY_NOW;
  }

 private:
  std::shared_ptr<Impl::Job> job_;
};

class TesseraImpl final : public client::Tessera::Server {
 public:
  explicit TesseraImpl(Impl& impl) : impl_(impl) {}

 protected:
  kj::Promise<void> submit(SubmitContext context) override {
    auto params = context.getParams();
    auto job = impl_.submit(params.getRequest(), params.getSink());
    context.releaseParams();
    context.getResults().setHandle(kj::heap<RequestImpl>(job));
    impl_.tasks->add(impl_.pump(job).catch_([job](kj::Exception&& e) {
      // The sink failed (the client went away): stop generating.
      if (!job->done) {
        job->done = true;
        job->server->loop.cancel(job->seq);
        job->server->metrics.error("disconnect");
      }
      (void)e;
    }));
    return kj::READY_NOW;
  }

  kj::Promise<void> models(ModelsContext context) override {
    auto list = context.getResults().initModels(1);
    list[0].setId(impl_.options.model_name);
    list[0].setMaxContext(impl_.options.limits.max_context);
    list[0].setVocabSize(impl_.tok.vocab_size());
    return kj::READY_NOW;
  }

  kj::Promise<void> stats(StatsContext context) override {
    const LoopStats s = impl_.loop.stats();
    auto o = context.getResults().initStats();
    o.setWaiting(s.waiting);
    o.setRunning(s.running);
    o.setKvBlocksUsed(s.kv_blocks_used);
    o.setKvBlocksFree(s.kv_blocks_free);
    o.setKvBlocksCached(s.kv_blocks_cached);
    o.setPrefixHitBlocks(s.prefix_hit_blocks);
    o.setSteps(s.steps);
    o.setPreemptions(s.preemptions);
    o.setStepTokens(s.step_tokens);
    o.setStepSeconds(s.step_seconds);
    o.setSubmitted(impl_.submitted.load());
    o.setVerifyPasses(s.verify_steps);
    o.setDraftTokens(s.draft_tokens);
    o.setAcceptedTokens(s.accepted_tokens);
    return kj::READY_NOW;
  }

 private:
  Impl& impl_;
};

class GateImpl final : public client::Gate::Server {
 public:
  explicit GateImpl(Impl& impl) : impl_(impl) {}

 protected:
  kj::Promise<void> connect(ConnectContext context) override {
    if (!impl_.options.api_key.empty()) {
      auto key = context.getParams().getApiKey();
      if (std::string(key.cStr(), key.size()) != impl_.options.api_key) {
        impl_.metrics.error("auth");
        refuse(ErrorKind::kInvalidInput, "invalid API key");
      }
    }
    context.getResults().setTessera(kj::heap<TesseraImpl>(impl_));
    return kj::READY_NOW;
  }

 private:
  Impl& impl_;
};

}  // namespace

CapnpServer::CapnpServer(CapnpServerOptions options, ServingLoop& loop, const Tokenizer& tokenizer, Metrics& metrics)
    : impl_(std::make_unique<Impl>(std::move(options), loop, tokenizer, metrics)) {}

CapnpServer::~CapnpServer() { stop(); }

int CapnpServer::start() {
  std::promise<int> bound;
  auto bound_future = bound.get_future();
  thread_ = std::thread([this, &bound] {
    bool reported = false;
    try {
      auto io = kj::setupAsyncIo();
      auto shutdown = kj::newPromiseAndCrossThreadFulfiller<void>();
      impl_->shutdown = kj::mv(shutdown.fulfiller);
      const std::string address = impl_->options.host + ":" + std::to_string(impl_->options.port);
      auto addr = io.provider->getNetwork().parseAddress(address.c_str()).wait(io.waitScope);
      auto listener = addr->listen();
      // Declared before the server: the jobs outlive the connections that made them.
      kj::TaskSet tasks(*impl_);
      impl_->tasks = &tasks;
      {
        capnp::TwoPartyServer server(kj::heap<GateImpl>(*impl_));
        bound.set_value(static_cast<int>(listener->getPort()));
        reported = true;
        server.listen(*listener).exclusiveJoin(kj::mv(shutdown.promise)).wait(io.waitScope);
      }
      impl_->tasks = nullptr;
    } catch (const kj::Exception& e) {
      impl_->tasks = nullptr;
      if (!reported) bound.set_exception(std::make_exception_ptr(
          Error(ErrorKind::kResource, std::string("cannot serve the Cap'n Proto API on ") + impl_->options.host + ":" +
                                          std::to_string(impl_->options.port) + ": " + e.getDescription().cStr())));
      else LOG(ERROR) << "capnp client API: " << e.getDescription().cStr();
    }
  });
  try {
    return bound_future.get();
  } catch (...) {
    thread_.join();
    throw;
  }
}

void CapnpServer::stop() {
  if (!thread_.joinable()) return;
  if (impl_->shutdown) impl_->shutdown->fulfill();
  thread_.join();
}

}  // namespace tessera::server
