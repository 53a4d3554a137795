#include "server/http_server.h"

#include <glog/logging.h>
#include <kj/async-io.h>
#include <kj/compat/http.h>

#include <atomic>
#include <chrono>
#include <future>
#include <random>

#include "common/error.h"
#include "common/json.h"

namespace tessera::server {

namespace {

using Clock = std::chrono::steady_clock;

std::string reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

// One choice of a completion: a sequence in the serving loop.
struct Choice {
  uint64_t seq = 0;
  std::shared_ptr<RequestStream> stream;
  int64_t prompt_index = 0;
  std::vector<int32_t> prompt;
  std::unique_ptr<StreamDecoder> decoder;
  std::string text;          // generated text (after stop truncation)
  size_t sent = 0;           // bytes of text already streamed
  std::vector<SampleResult> samples;
  std::vector<PromptLogprob> prompt_logprobs;
  int64_t generated = 0;
  std::string finish;        // "", "stop", "length"
  bool done = false;
  bool first_delta = true;
  Clock::time_point last_token;
  SpeculativeCounts speculative;  // cumulative, from the serving loop's events
};

// Fulfils a cross-thread promise once, whichever stream wakes it first.
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

struct HttpServer::Impl final : public kj::HttpService {
  Impl(HttpServerOptions o, ServingLoop& l, const Tokenizer& t, Metrics& m)
      : options(std::move(o)), loop(l), tok(t), metrics(m) {
    kj::HttpHeaderTable::Builder builder;
    h_authorization = builder.add("Authorization");
    h_content_type = builder.add("Content-Type");
    h_retry_after = builder.add("Retry-After");
    h_cache_control = builder.add("Cache-Control");
    h_content_length = builder.add("Content-Length");
    table = builder.build();
  }

  HttpServerOptions options;
  ServingLoop& loop;
  const Tokenizer& tok;
  Metrics& metrics;
  kj::Own<kj::HttpHeaderTable> table;
  kj::HttpHeaderId h_authorization = kj::HttpHeaderId::HOST, h_content_type = kj::HttpHeaderId::HOST,
                   h_retry_after = kj::HttpHeaderId::HOST, h_cache_control = kj::HttpHeaderId::HOST,
                   h_content_length = kj::HttpHeaderId::HOST;
  std::atomic<uint64_t> next_response{1};
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> shutdown;

  // ---- plain responses ----
  kj::Promise<void> send(Response& response, int status, std::string body, const char* type = "application/json",
                         const std::string& endpoint = "other", bool retry_after = false) {
    metrics.request(endpoint, status);
    kj::HttpHeaders headers(*table);
    headers.set(h_content_type, type);
    if (retry_after) headers.set(h_retry_after, kj::str(options.retry_after_seconds));
    auto out = response.send(static_cast<uint>(status), kj::StringPtr(reason_phrase(status).c_str()).cStr(), headers,
                             static_cast<uint64_t>(body.size()));
    auto data = kj::heapString(body.data(), body.size());
    auto p = out->write(data.begin(), data.size());
    return p.attach(kj::mv(out), kj::mv(data));
  }

  kj::Promise<void> send_error(Response& response, const ApiError& e, const std::string& endpoint) {
    const char* kind = e.status == 401 ? "auth"
                       : e.status == 404 ? "not_found"
                       : e.status == 413 ? "too_large"
                       : e.status == 429 ? "queue_full"
                       : e.status >= 500 ? "internal"
                                         : "invalid_request";
    metrics.error(kind);
    return send(response, e.status, error_json(e), "application/json", endpoint, e.status == 429);
  }

  kj::Promise<void> request(kj::HttpMethod method, kj::StringPtr url_k, const kj::HttpHeaders& headers,
                            kj::AsyncInputStream& body, Response& response) override {
    std::string url(url_k.cStr());
    if (auto q = url.find('?'); q != std::string::npos) url.resize(q);
    try {
      if (url == "/health" || url == "/v1/health") {
        if (method != kj::HttpMethod::GET) throw ApiError(405, "use GET", "method");
        return send(response, 200, "{\"status\":\"ok\"}", "application/json", "health");
      }
      if (url == "/metrics") {
        if (method != kj::HttpMethod::GET) throw ApiError(405, "use GET", "method");
        return send(response, 200, metrics.render(loop.stats(), options.model_name),
                    "text/plain; version=0.0.4; charset=utf-8", "metrics");
      }
      if (url.rfind("/v1/", 0) != 0) throw ApiError(404, "no such endpoint: " + url, "url");
      if (!options.api_key.empty()) {
        KJ_IF_MAYBE(auth, headers.get(h_authorization)) {
          if (std::string(auth->cStr()) != "Bearer " + options.api_key)
            throw ApiError(401, "invalid API key", "authorization", "invalid_request_error", "invalid_api_key");
        } else {
          throw ApiError(401, "missing API key (Authorization: Bearer ...)", "authorization",
                         "invalid_request_error", "invalid_api_key");
        }
      }
      if (url == "/v1/models") {
        if (method != kj::HttpMethod::GET) throw ApiError(405, "use GET", "method");
        Json m = Json::object();
        m.set("id", Json::string(options.model_name));
        m.set("object", Json::string("model"));
        m.set("created", Json::integer(0));
        m.set("owned_by", Json::string("tessera"));
        m.set("max_model_len", Json::integer(options.limits.max_context));
        Json root = Json::object();
        root.set("object", Json::string("list"));
        root.set("data", Json::array({m}));
        return send(response, 200, root.dump(), "application/json", "models");
      }
      const bool chat = url == "/v1/chat/completions";
      if (!chat && url != "/v1/completions") throw ApiError(404, "no such endpoint: " + url, "url");
      const std::string endpoint = chat ? "chat_completions" : "completions";
      if (method != kj::HttpMethod::POST) throw ApiError(405, "use POST", "method");
      KJ_IF_MAYBE(len, headers.get(h_content_length)) {
        if (std::strtoull(len->cStr(), nullptr, 10) > static_cast<uint64_t>(options.max_body_bytes))
          throw ApiError(413, "the request body is larger than " + std::to_string(options.max_body_bytes) + " bytes",
                         "body");
      }
      const auto arrived = Clock::now();
      return body.readAllText(static_cast<uint64_t>(options.max_body_bytes) + 1)
          .then(
              [this, chat, endpoint, arrived, &response](kj::String text) -> kj::Promise<void> {
                try {
                  if (text.size() > static_cast<size_t>(options.max_body_bytes))
                    throw ApiError(413, "the request body is larger than " + std::to_string(options.max_body_bytes) +
                                            " bytes", "body");
                  return complete(std::string_view(text.cStr(), text.size()), chat, endpoint, arrived, response);
                } catch (const ApiError& e) {
                  return send_error(response, e, endpoint);
                }
              },
              [this, endpoint, &response](kj::Exception&& e) -> kj::Promise<void> {
                if (e.getDescription().startsWith("Reached limit"))
                  return send_error(response, ApiError(413, "the request body is too large", "body"), endpoint);
                metrics.error("disconnect");
                return kj::READY_NOW;
              });
    } catch (const ApiError& e) {
      return send_error(response, e, "other");
    }
  }

  // ---- completions ----
  struct Job {
    Impl* server = nullptr;
    CompletionRequest req;
    std::string endpoint, id;
    int64_t created = 0;
    Clock::time_point arrived;
    std::vector<std::string> prompt_texts;  // per prompt (for echo)
    std::vector<Choice> choices;
    kj::Own<kj::AsyncOutputStream> out;     // streaming
    int64_t prompt_tokens = 0;
    size_t max_stop = 0;
    Response* response = nullptr;
    std::string error;                      // the serving loop failed the request

    ~Job() {  // the client went away (or we are done): nothing keeps running
      for (Choice& c : choices)
        if (!c.done && c.seq != 0) server->loop.cancel(c.seq);
    }
  };

  std::vector<int32_t> encode_prompt(const std::string& text) const {
    std::vector<int32_t> ids = tok.encode(text, /*add_special=*/true);
    if (ids.empty() && tok.bos_id() >= 0) ids.push_back(tok.bos_id());
    return ids;
  }

  kj::Promise<void> complete(std::string_view body, bool chat, const std::string& endpoint, Clock::time_point arrived,
                             Response& response) {
    auto job = kj::heap<Job>();
    job->server = this;
    job->response = &response;
    job->req = parse_completion_request(body, chat, options.limits);
    job->endpoint = endpoint;
    job->arrived = arrived;
    job->created = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
    job->id = std::string(chat ? "chatcmpl-" : "cmpl-") + std::to_string(next_response++);
    CompletionRequest& r = job->req;
    const char* prompt_field = chat ? "messages" : "prompt";
    std::vector<std::vector<int32_t>> prompts;
    if (chat) {
      const std::string text = render_chat(r.messages, options.chat_template,
                                           tok.bos_id() >= 0 ? tok.id_to_piece(tok.bos_id()) : "",
                                           tok.eos_id() >= 0 ? tok.id_to_piece(tok.eos_id()) : "");
      prompts.push_back(tok.encode(text, true, /*parse_special=*/true));
      job->prompt_texts.push_back(text);
    } else {
      for (const auto& p : r.prompts) {
        prompts.push_back(encode_prompt(p));
        job->prompt_texts.push_back(p);
      }
      for (const auto& ids : r.prompt_tokens) {
        check_prompt_token_ids(ids, tok.vocab_size());
        prompts.push_back(ids);
        job->prompt_texts.push_back(tok.decode(ids));
      }
    }
    const int64_t ctx = options.limits.max_context;
    for (const auto& p : prompts) check_prompt_fits(p.size(), r, ctx, prompt_field);
    for (const auto& s : r.stop) job->max_stop = std::max(job->max_stop, s.size());
    std::vector<int32_t> stop_tokens;
    for (int32_t id = 0; id < tok.vocab_size(); ++id)
      if (tok.is_eos(id)) stop_tokens.push_back(id);
    uint64_t base_seed = r.seed ? *r.seed : std::random_device{}() * 0x9E3779B97F4A7C15ull + 1;
    for (size_t pi = 0; pi < prompts.size(); ++pi) {
      job->prompt_tokens += static_cast<int64_t>(prompts[pi].size());
      for (int64_t j = 0; j < r.n; ++j) {
        SequenceRequest sr;
        sr.prompt = prompts[pi];
        sr.max_tokens = default_max_tokens(r, chat, ctx, sr.prompt.size());
        sr.sampling.temperature = r.temperature;
        sr.sampling.top_p = r.top_p;
        sr.sampling.top_k = r.top_k;
        sr.sampling.n_logprobs = r.logprobs;
        sr.rng_state = base_seed + static_cast<uint64_t>(job->choices.size());
        if (sr.rng_state == 0) sr.rng_state = 1;
        sr.stop_tokens = stop_tokens;
        sr.prompt_logprobs = r.echo && r.logprobs >= 0;
        Choice c;
        c.prompt_index = static_cast<int64_t>(pi);
        c.prompt = prompts[pi];
        c.decoder = std::make_unique<StreamDecoder>(tok);
        for (int32_t id : c.prompt) (void)c.decoder->push(id);  // the leading-space rule
        c.last_token = arrived;
        c.stream = loop.submit(std::move(sr), &c.seq);
        if (!c.stream) {
          c.seq = 0;
          throw ApiError(429, "the server is busy: the request queue is full, retry later", "", "server_busy",
                         "queue_full");  // Job's destructor cancels what was submitted
        }
        job->choices.push_back(std::move(c));
      }
    }
    if (r.stream) {
      metrics.request(endpoint, 200);
      kj::HttpHeaders headers(*table);
      headers.set(h_content_type, "text/event-stream");
      headers.set(h_cache_control, "no-cache");
      job->out = response.send(200, "OK", headers);
      if (r.echo) {  // the prompt first
        kj::Promise<void> p = kj::READY_NOW;
        for (size_t i = 0; i < job->choices.size(); ++i) {
          const std::string chunk = stream_chunk(*job, i, job->prompt_texts[static_cast<size_t>(job->choices[i].prompt_index)], nullptr);
          p = p.then([j = job.get(), chunk] { return write_sse(*j, chunk); });
        }
        return p.then([this, j = job.get()] { return pump(*j); })
            .catch_([this](kj::Exception&&) { metrics.error("disconnect"); })
            .attach(kj::mv(job));
      }
      auto p = pump(*job).catch_([this](kj::Exception&&) { metrics.error("disconnect"); });
      return p.attach(kj::mv(job));
    }
    auto p = pump(*job);
    return p.attach(kj::mv(job));
  }

  static kj::Promise<void> write_sse(Job& job, const std::string& json) {
    auto data = kj::heapString(("data: " + json + "\n\n").c_str());
    auto p = job.out->write(data.begin(), data.size());
    return p.attach(kj::mv(data));
  }

  // Waits until any unfinished choice has events, handles them, repeats.
  kj::Promise<void> pump(Job& job) {
    bool all_done = true;
    for (Choice& c : job.choices) all_done = all_done && c.done;
    if (all_done) return finish(job);
    auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
    auto waker = std::make_shared<Waker>();
    waker->fulfiller = kj::mv(paf.fulfiller);
    for (Choice& c : job.choices)
      if (!c.done) c.stream->on_ready([waker] { waker->fire(); });
    return paf.promise.then([this, &job]() -> kj::Promise<void> {
      kj::Promise<void> writes = kj::READY_NOW;
      for (size_t i = 0; i < job.choices.size(); ++i) {
        std::string delta;
        bool finished_now = false;
        std::string error;
        const size_t n_samples_before = job.choices[i].samples.size();
        handle_events(job, job.choices[i], &delta, &finished_now, &error);
        if (!error.empty()) {
          job.error = error;
          for (Choice& c : job.choices) c.done = true;
          return finish(job);
        }
        if (job.req.stream && (!delta.empty() || finished_now || job.choices[i].samples.size() > n_samples_before)) {
          const std::string chunk = stream_chunk(job, i, delta, finished_now ? &job.choices[i].finish : nullptr);
          writes = writes.then([&job, chunk] { return write_sse(job, chunk); });
        }
      }
      return writes.then([this, &job] { return pump(job); });
    });
  }

  void handle_events(Job& job, Choice& c, std::string* delta, bool* finished_now, std::string* error) {
    for (StreamEvent& se : c.stream->take()) {
      if (c.done) break;
      const SequenceEvent& e = se.event;
      for (const auto& p : e.prompt_logprobs) c.prompt_logprobs.push_back(p);
      if (e.speculative.verify_steps > c.speculative.verify_steps) c.speculative = e.speculative;
      if (e.token && c.finish.empty()) {
        if (c.generated == 0) metrics.ttft(std::chrono::duration<double>(se.at - job.arrived).count());
        else metrics.itl(std::chrono::duration<double>(se.at - c.last_token).count());
        c.last_token = se.at;
        ++c.generated;
        c.samples.push_back(*e.token);
        c.text += c.decoder->push(e.token->token);
        if (!job.req.stop.empty()) {
          const size_t from = c.sent >= job.max_stop ? c.sent - job.max_stop : 0;
          size_t best = std::string::npos;
          for (const auto& s : job.req.stop) {
            const size_t at = c.text.find(s, from);
            if (at != std::string::npos) best = std::min(best, at);
          }
          if (best != std::string::npos) {
            c.text.resize(best);
            c.finish = "stop";
            loop.cancel(c.seq, FinishReason::kStop);
          }
        }
      }
      if (e.finish != FinishReason::kNone && c.finish.empty()) {
        switch (e.finish) {
          case FinishReason::kStop: c.finish = "stop"; break;
          case FinishReason::kLength: c.finish = "length"; break;
          case FinishReason::kCancelled: c.finish = "stop"; break;
          case FinishReason::kNone: break;
          case FinishReason::kError: *error = se.error.empty() ? "the request could not be served" : se.error; break;
        }
        if (e.finish != FinishReason::kError) c.text += c.decoder->finish();
      }
      if (!c.finish.empty() || e.finish != FinishReason::kNone) {
        c.done = !c.finish.empty();
        if (c.done) *finished_now = true;
      }
    }
    // What can be sent: all of the text when done, else all but a tail that might
    // begin a stop sequence.
    size_t safe = c.text.size();
    if (!c.done) {
      for (const auto& s : job.req.stop)
        for (size_t k = std::min(s.size() - 1, c.text.size()); k > 0; --k)
          if (c.text.compare(c.text.size() - k, k, s, 0, k) == 0) {
            safe = std::min(safe, c.text.size() - k);
            break;
          }
    }
    if (safe > c.sent) {
      *delta = c.text.substr(c.sent, safe - c.sent);
      c.sent = safe;
    }
  }

  // ---- JSON ----
  Json token_logprobs_json(const Job& job, const Choice& c, size_t from_sample, bool include_prompt) const {
    if (job.req.chat) {
      Json content = Json::array();
      for (size_t i = from_sample; i < c.samples.size(); ++i) {
        const SampleResult& s = c.samples[i];
        Json t = Json::object();
        t.set("token", Json::string(tok.decode_token(s.token)));
        t.set("logprob", Json::number(s.logprob));
        Json top = Json::array();
        for (const auto& tl : s.top) {
          Json o = Json::object();
          o.set("token", Json::string(tok.decode_token(tl.token)));
          o.set("logprob", Json::number(tl.logprob));
          top.push_back(std::move(o));
        }
        t.set("top_logprobs", std::move(top));
        content.push_back(std::move(t));
      }
      Json lp = Json::object();
      lp.set("content", std::move(content));
      return lp;
    }
    Json tokens = Json::array(), lps = Json::array(), tops = Json::array(), offsets = Json::array();
    int64_t offset = 0;
    auto add = [&](int32_t token, std::optional<float> lp, const std::vector<TokenLogprob>* top) {
      const std::string piece = tok.decode_token(token);
      tokens.push_back(Json::string(piece));
      lps.push_back(lp ? Json::number(*lp) : Json());
      if (top == nullptr) {
        tops.push_back(Json());
      } else {
        Json o = Json::object();
        for (const auto& tl : *top) o.set(tok.decode_token(tl.token), Json::number(tl.logprob));
        tops.push_back(std::move(o));
      }
      offsets.push_back(Json::integer(offset));
      offset += static_cast<int64_t>(piece.size());
    };
    if (include_prompt) {
      for (size_t i = 0; i < c.prompt.size(); ++i) {
        if (i == 0 || i - 1 >= c.prompt_logprobs.size()) {
          add(c.prompt[i], std::nullopt, nullptr);
        } else {
          const PromptLogprob& p = c.prompt_logprobs[i - 1];
          add(c.prompt[i], p.logprob, &p.top);
        }
      }
    }
    for (size_t i = from_sample; i < c.samples.size(); ++i) add(c.samples[i].token, c.samples[i].logprob, &c.samples[i].top);
    Json lp = Json::object();
    lp.set("tokens", std::move(tokens));
    lp.set("token_logprobs", std::move(lps));
    lp.set("top_logprobs", std::move(tops));
    lp.set("text_offset", std::move(offsets));
    return lp;
  }

  Json usage_json(const Job& job) const {
    int64_t gen = 0;
    for (const Choice& c : job.choices) gen += c.generated;
    Json u = Json::object();
    u.set("prompt_tokens", Json::integer(job.prompt_tokens));
    u.set("completion_tokens", Json::integer(gen));
    u.set("total_tokens", Json::integer(job.prompt_tokens + gen));
    // An extension (clients ignore unknown usage fields): speculative decoding of this
    // request, when the server runs with --draft and it was used.
    SpeculativeCounts spec;
    for (const Choice& c : job.choices) {
      spec.verify_steps += c.speculative.verify_steps;
      spec.drafted += c.speculative.drafted;
      spec.accepted += c.speculative.accepted;
      spec.final_k = std::max(spec.final_k, c.speculative.final_k);
    }
    if (spec.verify_steps > 0) {
      Json sp = Json::object();
      sp.set("verify_passes", Json::integer(spec.verify_steps));
      sp.set("draft_tokens", Json::integer(spec.drafted));
      sp.set("accepted_tokens", Json::integer(spec.accepted));
      sp.set("acceptance_rate", Json::number(spec.drafted > 0 ? static_cast<double>(spec.accepted) / spec.drafted : 0.0));
      // --draft-k-adaptive: the K the request ended with (n > 1 choices: the largest).
      if (spec.final_k > 0) sp.set("final_k", Json::integer(spec.final_k));
      u.set("speculative", std::move(sp));
    }
    return u;
  }

  Json envelope(const Job& job, bool chunk) const {
    Json root = Json::object();
    root.set("id", Json::string(job.id));
    root.set("object", Json::string(job.req.chat ? (chunk ? "chat.completion.chunk" : "chat.completion")
                                                 : "text_completion"));
    root.set("created", Json::integer(job.created));
    root.set("model", Json::string(options.model_name));
    return root;
  }

  std::string stream_chunk(Job& job, size_t i, const std::string& delta, const std::string* finish) {
    Choice& c = job.choices[i];
    Json root = envelope(job, true);
    Json ch = Json::object();
    ch.set("index", Json::integer(static_cast<int64_t>(i)));
    if (job.req.chat) {
      Json d = Json::object();
      if (c.first_delta) d.set("role", Json::string("assistant"));
      if (!delta.empty() || !finish) d.set("content", Json::string(delta));
      c.first_delta = false;
      ch.set("delta", std::move(d));
    } else {
      ch.set("text", Json::string(delta));
    }
    // The samples not yet reported go with this chunk.
    Json lp;
    if (job.req.logprobs >= 0) {
      const size_t start = c.samples.empty() ? 0 : reported_samples(c);
      lp = token_logprobs_json(job, c, start, false);
      reported_samples_[&c] = c.samples.size();
    }
    ch.set("logprobs", std::move(lp));
    ch.set("finish_reason", finish ? Json::string(*finish) : Json());
    root.set("choices", Json::array({ch}));
    if (job.req.include_usage) root.set("usage", Json());
    return root.dump();
  }
  std::unordered_map<const Choice*, size_t> reported_samples_;
  size_t reported_samples(const Choice& c) const {
    auto it = reported_samples_.find(&c);
    return it == reported_samples_.end() ? 0 : it->second;
  }

  kj::Promise<void> finish(Job& job) {
    int64_t gen = 0;
    for (const Choice& c : job.choices) gen += c.generated;
    metrics.tokens(job.prompt_tokens, gen);
    metrics.latency(std::chrono::duration<double>(Clock::now() - job.arrived).count());
    for (const Choice& c : job.choices) reported_samples_.erase(&c);
    if (!job.error.empty()) metrics.error("internal");
    if (job.req.stream) {
      kj::Promise<void> p = kj::READY_NOW;
      if (!job.error.empty()) p = write_sse(job, error_json(ApiError(503, job.error, "", "server_error")));
      if (job.req.include_usage) {
        Json root = envelope(job, true);
        root.set("choices", Json::array());
        root.set("usage", usage_json(job));
        p = write_sse(job, root.dump());
      }
      return p.then([&job] {
        static const char kDone[] = "data: [DONE]\n\n";
        return job.out->write(kDone, sizeof kDone - 1);
      });
    }
    if (!job.error.empty()) return send_error(*job.response, ApiError(503, job.error, "", "server_error"), job.endpoint);
    Json root = envelope(job, false);
    Json choices = Json::array();
    for (size_t i = 0; i < job.choices.size(); ++i) {
      const Choice& c = job.choices[i];
      Json ch = Json::object();
      ch.set("index", Json::integer(static_cast<int64_t>(i)));
      const std::string text =
          (job.req.echo ? job.prompt_texts[static_cast<size_t>(c.prompt_index)] : std::string()) + c.text;
      if (job.req.chat) {
        Json m = Json::object();
        m.set("role", Json::string("assistant"));
        m.set("content", Json::string(text));
        ch.set("message", std::move(m));
      } else {
        ch.set("text", Json::string(text));
      }
      ch.set("logprobs", job.req.logprobs >= 0 ? token_logprobs_json(job, c, 0, job.req.echo) : Json());
      ch.set("finish_reason", Json::string(c.finish));
      choices.push_back(std::move(ch));
    }
    root.set("choices", std::move(choices));
    root.set("usage", usage_json(job));
    return send(*job.response, 200, root.dump(), "application/json", job.endpoint);
  }
};

HttpServer::HttpServer(HttpServerOptions options, ServingLoop& loop, const Tokenizer& tokenizer, Metrics& metrics)
    : impl_(std::make_unique<Impl>(std::move(options), loop, tokenizer, metrics)) {}

HttpServer::~HttpServer() { stop(); }

int HttpServer::start() {
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
      kj::HttpServerSettings settings;
      settings.headerTimeout = 30 * kj::SECONDS;
      kj::HttpServer server(io.provider->getTimer(), *impl_->table, *impl_, settings);
      bound.set_value(static_cast<int>(listener->getPort()));
      reported = true;
      server.listenHttp(*listener).exclusiveJoin(kj::mv(shutdown.promise)).wait(io.waitScope);
    } catch (const kj::Exception& e) {
      if (!reported) bound.set_exception(std::make_exception_ptr(
          Error(ErrorKind::kResource, std::string("cannot serve HTTP on ") + impl_->options.host + ":" +
                                          std::to_string(impl_->options.port) + ": " + e.getDescription().cStr())));
      else LOG(ERROR) << "HTTP server: " << e.getDescription().cStr();
    }
  });
  try {
    return bound_future.get();
  } catch (...) {
    thread_.join();
    throw;
  }
}

void HttpServer::stop() {
  if (!thread_.joinable()) return;
  if (impl_->shutdown) impl_->shutdown->fulfill();
  thread_.join();
}

}  // namespace tessera::server
