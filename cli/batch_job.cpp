// tessera generate --prompts FILE --output FILE: the offline batch job.
//
// Many prompts through one StepRunner (the local worker, or every rank's worker under
// mpirun / srun) with continuous batching: up to --batch-size sequences run at once,
// spread over micro-batches kept in flight together (pipeline overlap, as in
// coordinator/batch_generator.h); as soon as a sequence finishes (a stop token or
// --max-tokens) its KV blocks go back to the pool and the next prompt takes its place
// in the following step. Prompts are admitted only when their whole KV need
// (prompt + max tokens) fits the pool, so nothing is ever preempted.
//
// Input: one prompt per line, either JSON {"id": ..., "prompt": "..."} (id a string or
// a number; without one the line number is used) or plain text (id = line number,
// counted from 1). Blank lines are skipped.
// Output: JSONL, one line per prompt, appended and flushed as each prompt finishes:
//   {"id":..., "text":"...", "prompt_tokens":N, "completion_tokens":M,
//    "finish_reason":"stop"|"length"|"error" [, "error":"..."]}
// A rerun reads the output first and skips every id already there (a partial last line
// left by a killed job is cut off first), so a requeued SLURM job resumes instead of
// starting over, and every prompt is answered exactly once.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

#include "checkpoint/open.h"
#include "cli/args.h"
#include "model/config_loader.h"
#include "common/error.h"
#include "common/json.h"
#include "coordinator/kv_block_allocator.h"
#include "coordinator/step_runner.h"
#include "tokenizer/tokenizer.h"
#include "worker/sampling.h"

namespace tessera::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct PromptItem {
  std::string id_json;  // the id as it appears in JSON (a string literal or a number)
  std::string text;
  int64_t line = 0;     // 1-based line number in the prompts file
};

std::vector<PromptItem> read_prompts(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TESSERA_REQUIRE(in.good(), ErrorKind::kNotFound, "cannot open the prompts file '", path, "'");
  std::vector<PromptItem> items;
  std::set<std::string> seen;
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    PromptItem it;
    it.line = n;
    const size_t first = line.find_first_not_of(" \t");
    if (line[first] == '{') {
      const Json j = Json::parse(line, path + ":" + std::to_string(n));
      const Json* p = j.find("prompt");
      TESSERA_REQUIRE(p != nullptr && p->is_string(), ErrorKind::kInvalidInput, path, ":", n,
                      ": a JSON line needs a string \"prompt\"");
      it.text = p->as_string();
      const Json* id = j.find("id");
      if (id != nullptr && (id->is_string() || id->is_integer())) {
        it.id_json = id->dump();
      } else {
        TESSERA_REQUIRE(id == nullptr || id->is_null(), ErrorKind::kInvalidInput, path, ":", n,
                        ": \"id\" must be a string or an integer");
        it.id_json = std::to_string(n);
      }
    } else {
      it.text = line;
      it.id_json = std::to_string(n);
    }
    TESSERA_REQUIRE(seen.insert(it.id_json).second, ErrorKind::kInvalidInput, path, ":", n, ": id ", it.id_json,
                    " appears twice");
    items.push_back(std::move(it));
  }
  return items;
}

// Ids already answered in `path`; cuts off a partial last line (a job killed while
// writing it) so that the file stays one JSON object per line.
std::set<std::string> read_done(const std::string& path) {
  std::set<std::string> done;
  std::ifstream in(path, std::ios::binary);
  if (!in.good()) return done;
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  size_t keep = all.size();
  if (!all.empty() && all.back() != '\n') {
    keep = all.rfind('\n');
    keep = keep == std::string::npos ? 0 : keep + 1;
    TESSERA_REQUIRE(truncate(path.c_str(), static_cast<off_t>(keep)) == 0, ErrorKind::kResource,
                    "cannot cut the partial last line off '", path, "'");
    std::fprintf(stderr, "batch: dropped a partial last line from %s (a job stopped while writing it)\n",
                 path.c_str());
  }
  size_t pos = 0;
  int64_t n = 0;
  while (pos < keep) {
    size_t end = all.find('\n', pos);
    if (end == std::string::npos || end > keep) end = keep;
    ++n;
    const std::string_view line(all.data() + pos, end - pos);
    pos = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const Json j = Json::parse(line, path + ":" + std::to_string(n));
    const Json* id = j.find("id");
    TESSERA_REQUIRE(id != nullptr, ErrorKind::kInvalidInput, path, ":", n, ": result without an \"id\"");
    done.insert(id->dump());
  }
  return done;
}

struct Active {
  size_t item = 0;               // index into the prompt list
  uint64_t seq_id = 0;
  std::vector<int32_t> prompt;
  std::vector<int32_t> generated;
  std::vector<int32_t> blocks;
  int64_t prefilled = 0;         // prompt tokens already in the KV cache
  int64_t max_new = 0;
  uint64_t rng = 0;
  bool in_step = false;          // part of the step in flight
  bool finished = false;
  std::string finish_reason;
};

struct MicroBatch {
  std::vector<Active> seqs;
  std::vector<uint64_t> release;  // finished since the last step of this micro-batch
  bool in_flight = false;
};

uint64_t mix_seed(uint64_t seed, int64_t line) {
  // splitmix64 of (seed, line): each prompt's sampling depends only on itself, so a
  // resumed job samples the same as an uninterrupted one.
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(line + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return z != 0 ? z : 1;
}

SamplerKind parse_sampler_kind(const std::string& s) {
  if (s == "standard") return SamplerKind::kStandard;
  if (s == "llama2c") return SamplerKind::kLlama2c;
  TESSERA_FAIL(ErrorKind::kInvalidInput, "--sampler must be 'standard' or 'llama2c', got '", s, "'");
}

}  // namespace

// The KV pool of a batch job when --ctx is not given: room for --batch-size sequences of
// the model's context (at most 4096 positions each; --ctx sets the pool instead).
// 0 outside batch mode or when --ctx is set.
int64_t batch_kv_blocks(const Args& a) {
  if (!a.has("prompts") || a.int64("ctx") > 0) return 0;
  const ModelConfig c = load_model_config(*checkpoint::open_checkpoint(a.str("model")));
  const int64_t per_seq = std::min<int64_t>(c.max_seq_len, 4096);
  const int64_t block = a.int64("kv-block-size");
  return (std::max<int64_t>(1, a.int64("batch-size")) * per_seq + block - 1) / block;
}

int run_batch_job(const Args& a, StepRunner& runner, const Tokenizer& tok) {
  TESSERA_REQUIRE(a.has("output"), ErrorKind::kInvalidInput, "--prompts needs --output FILE (JSONL results)");
  TESSERA_REQUIRE(tok.vocab_size() <= runner.config().vocab_size, ErrorKind::kInvalidInput, "the tokenizer has ",
                  tok.vocab_size(), " tokens but the model only ", runner.config().vocab_size);
  const std::string out_path = a.str("output");
  const std::vector<PromptItem> items = read_prompts(a.str("prompts"));
  const std::set<std::string> done = read_done(out_path);

  SamplingParams sampling;
  sampling.temperature = static_cast<float>(a.real("temperature"));
  sampling.top_k = static_cast<int32_t>(a.int64("top-k"));
  sampling.top_p = static_cast<float>(a.real("top-p"));
  sampling.kind = parse_sampler_kind(a.str("sampler"));
  TESSERA_REQUIRE(sampling.temperature >= 0, ErrorKind::kInvalidInput, "--temperature must be >= 0");
  TESSERA_REQUIRE(sampling.top_k >= 0, ErrorKind::kInvalidInput, "--top-k must be >= 0");
  // A fixed default seed (not the clock): a resumed job must sample what the first run would have.
  const uint64_t seed = static_cast<uint64_t>(a.int64("seed"));
  const int64_t max_tokens = a.int64("max-tokens");
  TESSERA_REQUIRE(max_tokens >= 1, ErrorKind::kInvalidInput, "--max-tokens must be >= 1");
  const int64_t chunk = a.int64("prefill-chunk");
  TESSERA_REQUIRE(chunk >= 1, ErrorKind::kInvalidInput, "--prefill-chunk must be >= 1");
  const int64_t batch_size = a.int64("batch-size");
  TESSERA_REQUIRE(batch_size >= 1, ErrorKind::kInvalidInput, "--batch-size must be >= 1");
  int64_t n_mb = a.has("micro-batches") ? a.int64("micro-batches") : a.int64("pp");
  TESSERA_REQUIRE(n_mb >= 1, ErrorKind::kInvalidInput, "--micro-batches must be >= 1");
  n_mb = std::min(n_mb, batch_size);
  const int64_t per_mb = (batch_size + n_mb - 1) / n_mb;

  std::vector<int32_t> stop_tokens;
  if (sampling.kind == SamplerKind::kLlama2c) {
    if (tok.bos_id() >= 0) stop_tokens.push_back(tok.bos_id());
  } else {
    for (int32_t id = 0; id < tok.vocab_size(); ++id)
      if (tok.is_eos(id)) stop_tokens.push_back(id);
  }
  auto is_stop = [&](int32_t t) { return std::find(stop_tokens.begin(), stop_tokens.end(), t) != stop_tokens.end(); };

  std::deque<size_t> pending;
  for (size_t i = 0; i < items.size(); ++i)
    if (done.count(items[i].id_json) == 0) pending.push_back(i);
  const size_t total = items.size(), skipped = items.size() - pending.size(), todo = pending.size();
  std::fprintf(stderr, "batch: %zu prompts in %s, %zu already in %s, %zu to do (batch size %lld, %lld micro-batches)\n",
               total, a.str("prompts").c_str(), skipped, out_path.c_str(), todo, static_cast<long long>(batch_size),
               static_cast<long long>(n_mb));
  if (todo == 0) return 0;

  std::FILE* out = std::fopen(out_path.c_str(), "ab");
  TESSERA_REQUIRE(out != nullptr, ErrorKind::kResource, "cannot open '", out_path, "' for appending");
  const auto t0 = Clock::now();
  auto last_progress = t0;
  size_t finished = 0, errors = 0;
  int64_t gen_tokens = 0, running = 0;

  auto progress = [&](bool force) {
    const auto now = Clock::now();
    if (!force && now - last_progress < std::chrono::seconds(1)) return;
    last_progress = now;
    const double s = std::chrono::duration<double>(now - t0).count();
    std::fprintf(stderr, "batch: %zu/%zu done (%zu this run, %zu skipped, %zu errors), %lld running, %.1f s, %.1f tok/s\n",
                 skipped + finished, total, finished, skipped, errors, static_cast<long long>(running), s,
                 s > 0 ? static_cast<double>(gen_tokens) / s : 0.0);
  };

  auto write_result = [&](const PromptItem& it, int64_t prompt_tokens, const std::vector<int32_t>& prompt_ids,
                          const std::vector<int32_t>& generated, const std::string& reason, const std::string& error) {
    std::string text;
    if (error.empty()) {
      StreamDecoder dec(tok);
      for (int32_t id : prompt_ids) (void)dec.push(id);  // keeps the leading-space rule of `generate`
      for (int32_t id : generated) text += dec.push(id);
      text += dec.finish();
    }
    std::string line = "{\"id\":" + it.id_json + ",\"text\":";
    json_escape_to(line, text);
    line += ",\"prompt_tokens\":" + std::to_string(prompt_tokens) +
            ",\"completion_tokens\":" + std::to_string(generated.size()) + ",\"finish_reason\":";
    json_escape_to(line, reason);
    if (!error.empty()) {
      line += ",\"error\":";
      json_escape_to(line, error);
    }
    line += "}\n";
    // One write per line, then flush: a kill leaves at most one partial line (cut on rerun).
    TESSERA_REQUIRE(std::fwrite(line.data(), 1, line.size(), out) == line.size() && std::fflush(out) == 0,
                    ErrorKind::kResource, "cannot write to '", out_path, "'");
    ++finished;
    progress(false);
  };

  KvBlockAllocator allocator(runner.kv_blocks());
  const int64_t block_size = runner.kv_block_size();
  const int64_t max_seq = runner.config().max_seq_len;
  std::vector<MicroBatch> mbs(static_cast<size_t>(n_mb));
  uint64_t next_seq = 1, step_id = 0;

  // Moves pending prompts into micro-batch m while it has room and the KV pool has blocks.
  auto admit = [&](MicroBatch& mb) {
    while (!pending.empty() && static_cast<int64_t>(mb.seqs.size()) < per_mb) {
      const PromptItem& it = items[pending.front()];
      Active s;
      s.item = pending.front();
      s.prompt = tok.encode(it.text, /*add_special=*/true);
      if (s.prompt.empty() && tok.bos_id() >= 0) s.prompt.push_back(tok.bos_id());
      const int64_t plen = static_cast<int64_t>(s.prompt.size());
      if (plen == 0 || plen >= max_seq) {
        pending.pop_front();
        ++errors;
        write_result(it, plen, {}, {}, "error",
                     plen == 0 ? "the prompt is empty and the vocabulary has no BOS token"
                               : "the prompt has " + std::to_string(plen) + " tokens; the context is " +
                                     std::to_string(max_seq));
        continue;
      }
      s.max_new = std::min(max_tokens, max_seq - plen);
      if (!allocator.ensure(s.blocks, plen + s.max_new, block_size)) {
        if (running > 0) return;  // wait for blocks to come back
        pending.pop_front();
        ++errors;
        write_result(it, plen, {}, {}, "error",
                     "the KV cache (" + std::to_string(runner.kv_blocks() * block_size) +
                         " positions, --ctx) cannot hold this prompt plus --max-tokens");
        continue;
      }
      pending.pop_front();
      s.seq_id = next_seq++;
      s.rng = mix_seed(seed, it.line);
      mb.seqs.push_back(std::move(s));
      ++running;
    }
  };

  auto plan_for = [&](MicroBatch& mb) {
    StepPlan plan;
    plan.step_id = ++step_id;
    plan.release = std::move(mb.release);
    mb.release.clear();
    for (Active& s : mb.seqs) {
      SequenceStep st;
      st.seq_id = s.seq_id;
      const int64_t plen = static_cast<int64_t>(s.prompt.size());
      if (s.prefilled < plen) {
        const int64_t n = std::min(chunk, plen - s.prefilled);
        st.tokens.assign(s.prompt.begin() + s.prefilled, s.prompt.begin() + s.prefilled + n);
        st.pos0 = s.prefilled;
        st.n_outputs = s.prefilled + n == plen ? 1 : 0;
        s.prefilled += n;
      } else {
        st.tokens.assign(1, s.generated.back());
        st.pos0 = plen + static_cast<int64_t>(s.generated.size()) - 1;
        st.n_outputs = 1;
      }
      st.block_table = s.blocks;
      st.sampling = sampling;
      st.rng_state = s.rng;
      s.in_step = true;
      plan.sequences.push_back(std::move(st));
    }
    return plan;
  };

  std::deque<std::pair<size_t, std::function<StepResult()>>> in_flight;
  while (true) {
    for (size_t m = 0; m < mbs.size(); ++m) {
      MicroBatch& mb = mbs[m];
      if (mb.in_flight) continue;
      admit(mb);
      if (mb.seqs.empty()) continue;
      mb.in_flight = true;
      in_flight.emplace_back(m, runner.submit(plan_for(mb)));
    }
    if (in_flight.empty()) {
      if (pending.empty()) break;
      continue;  // admit() reports prompts that can never fit; try again
    }
    auto [m, wait] = std::move(in_flight.front());
    in_flight.pop_front();
    const StepResult r = wait();
    MicroBatch& mb = mbs[m];
    mb.in_flight = false;
    TESSERA_REQUIRE(r.outputs.size() == mb.seqs.size(), ErrorKind::kInternal, "step returned ", r.outputs.size(),
                    " outputs for ", mb.seqs.size(), " sequences");
    for (size_t k = 0; k < mb.seqs.size(); ++k) {
      Active& s = mb.seqs[k];
      s.in_step = false;
      const SequenceOutput& o = r.outputs[k];
      s.rng = o.rng_state;
      if (o.samples.empty()) continue;  // a prefill chunk that does not end the prompt
      const int32_t t = o.samples.at(0).token;
      if (is_stop(t)) {
        s.finished = true;
        s.finish_reason = "stop";
      } else {
        s.generated.push_back(t);
        ++gen_tokens;
        if (static_cast<int64_t>(s.generated.size()) >= s.max_new) {
          s.finished = true;
          s.finish_reason = "length";
        }
      }
    }
    std::vector<Active> keep;
    for (Active& s : mb.seqs) {
      if (!s.finished) {
        keep.push_back(std::move(s));
        continue;
      }
      --running;
      allocator.release(s.blocks);
      mb.release.push_back(s.seq_id);
      write_result(items[s.item], static_cast<int64_t>(s.prompt.size()), s.prompt, s.generated, s.finish_reason, "");
    }
    mb.seqs = std::move(keep);
  }
  std::fclose(out);
  progress(true);
  return errors == 0 ? 0 : 3;
}

}  // namespace tessera::cli
