#!/usr/bin/env python3
"""Serving benchmark (issue 4): streaming OpenAI /v1/completions clients against one or
more servers, swept over concurrency levels, engines interleaved per level so that all
see the same machine conditions.

Per request: TTFT (send -> first streamed chunk with text), ITL (gaps between later
streamed chunks), latency (send -> [DONE]), generated tokens (the usage chunk when the
server sends one, else the number of streamed text chunks). Per level: generated tokens
of all requests / wall time of the level, p50/p99 of TTFT, ITL and latency.

  .venv-tools/bin/python tools/serve_bench.py \
      --engine tessera=8000:tessera-random-q8_0 --engine llama.cpp=8001:/tmp/tessera-random-q8_0.gguf \
      --concurrency 1 4 16 64 --max-tokens 64 --prompt-words 60 \
      --json /tmp/serve_bench.json --plot docs/serving_bench.png

Prompts are distinct per request (random words, seeded), so no server gets prefix-cache
hits across requests. Greedy (temperature 0), fixed max_tokens; `--eos-bias NAME=ID`
adds logit_bias {ID: -100} for that engine only (tessera accepts only an empty
logit_bias) so a random-weights model does not stop early there. Python stdlib only,
plus matplotlib for --plot.
"""
import argparse
import http.client
import json
import random
import statistics
import sys
import threading
import time

WORDS = ("time day little girl boy dog cat tree house water sun moon sky happy sad big small "
         "red blue green run jump play walk talk look find make want need like love friend "
         "mother father park ball toy book car road river hill school garden flower bird fish "
         "rain snow wind cold warm night morning story king queen castle ship sea star light "
         "dark door window table chair bread cake apple milk song dance laugh cry sleep dream").split()


def percentile(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def make_prompt(rng, words):
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def one_request(host, port, body, timeout):
    """Streams one completion; returns a dict of timings or {'error': ...}."""
    data = json.dumps(body)
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", "/v1/completions", data, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            return {"error": "HTTP %d: %s" % (resp.status, resp.read()[:200])}
        times = []          # arrival time of every chunk carrying text
        usage_tokens = None
        prompt_tokens = None
        finish = None
        done = False
        while not done:
            line = resp.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                done = True
                break
            now = time.perf_counter()
            obj = json.loads(payload)
            if obj.get("usage"):
                usage_tokens = obj["usage"].get("completion_tokens")
                prompt_tokens = obj["usage"].get("prompt_tokens")
            for ch in obj.get("choices") or []:
                if ch.get("text"):
                    times.append(now)
                if ch.get("finish_reason"):
                    finish = ch["finish_reason"]
        t1 = time.perf_counter()
        if not times:
            return {"error": "no text chunks (finish=%s)" % finish}
        return {
            "ttft": times[0] - t0,
            "itl": [b - a for a, b in zip(times, times[1:])],
            "latency": t1 - t0,
            "chunks": len(times),
            "tokens": usage_tokens if usage_tokens is not None else len(times),
            "prompt_tokens": prompt_tokens,
            "finish": finish,
            "start": t0,
            "end": t1,
        }
    except Exception as e:  # noqa: BLE001 - report, do not crash the sweep
        return {"error": repr(e)}
    finally:
        conn.close()


def run_level(eng, concurrency, n_requests, args, seed):
    rng = random.Random(seed)
    bodies = []
    for i in range(n_requests):
        body = {"model": eng["model"], "prompt": make_prompt(rng, args.prompt_words),
                "max_tokens": args.max_tokens, "temperature": 0, "stream": True}
        if eng["usage"]:
            body["stream_options"] = {"include_usage": True}
        if eng["eos_bias"] is not None:
            body["logit_bias"] = {str(eng["eos_bias"]): -100}
        bodies.append(body)
    results = [None] * n_requests
    next_i = [0]
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                i = next_i[0]
                if i >= n_requests:
                    return
                next_i[0] += 1
            results[i] = one_request(args.host, eng["port"], bodies[i], args.timeout)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ok = [r for r in results if "error" not in r]
    errors = [r["error"] for r in results if "error" in r]
    itl = [g for r in ok for g in r["itl"]]
    ttft = [r["ttft"] for r in ok]
    lat = [r["latency"] for r in ok]
    tokens = sum(r["tokens"] for r in ok)
    ptoks = [r["prompt_tokens"] for r in ok if r["prompt_tokens"]]
    return {
        "engine": eng["name"], "concurrency": concurrency, "requests": n_requests,
        "ok": len(ok), "errors": errors[:3], "n_errors": len(errors), "wall_s": wall,
        "tokens": tokens, "tok_per_s": tokens / wall if wall > 0 else 0.0,
        "chunks_per_request": statistics.mean([r["chunks"] for r in ok]) if ok else 0,
        "tokens_per_request": statistics.mean([r["tokens"] for r in ok]) if ok else 0,
        "prompt_tokens_mean": statistics.mean(ptoks) if ptoks else None,
        "finish": sorted({r["finish"] for r in ok if r["finish"]}),
        "ttft_p50": percentile(ttft, 50), "ttft_p99": percentile(ttft, 99),
        "itl_p50": percentile(itl, 50), "itl_p99": percentile(itl, 99),
        "lat_p50": percentile(lat, 50), "lat_p99": percentile(lat, 99),
    }


def parse_engine(s, usage_off, eos):
    name, rest = s.split("=", 1)
    port, model = rest.split(":", 1)
    return {"name": name, "port": int(port), "model": model,
            "usage": name not in usage_off, "eos_bias": eos.get(name)}


def markdown(rows, engines):
    out = ["| concurrency | engine | requests ok | generated tok/s | TTFT p50 / p99 (s) | "
           "ITL p50 / p99 (ms) | latency p50 / p99 (s) | tokens / request |",
           "|---|---|---|---|---|---|---|---|"]
    by = {(r["engine"], r["concurrency"]): r for r in rows}
    levels = sorted({r["concurrency"] for r in rows})
    for c in levels:
        for e in engines:
            r = by.get((e["name"], c))
            if not r:
                continue
            out.append("| %d | %s | %d/%d | %.1f | %.3f / %.3f | %.1f / %.1f | %.2f / %.2f | %.1f |" % (
                c, e["name"], r["ok"], r["requests"], r["tok_per_s"], r["ttft_p50"], r["ttft_p99"],
                r["itl_p50"] * 1e3, r["itl_p99"] * 1e3, r["lat_p50"], r["lat_p99"],
                r["tokens_per_request"]))
        if len(engines) == 2:
            a, b = by.get((engines[0]["name"], c)), by.get((engines[1]["name"], c))
            if a and b and b["tok_per_s"] > 0:
                out.append("| %d | **%s / %s** | | **%.2fx** | | p99 ITL %.2fx | | |" % (
                    c, engines[0]["name"], engines[1]["name"], a["tok_per_s"] / b["tok_per_s"],
                    a["itl_p99"] / b["itl_p99"] if b["itl_p99"] > 0 else float("nan")))
    return "\n".join(out)


def plot(rows, engines, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for e in engines:
        rs = sorted((r for r in rows if r["engine"] == e["name"]), key=lambda r: r["concurrency"])
        cs = [r["concurrency"] for r in rs]
        ax1.plot(cs, [r["tok_per_s"] for r in rs], marker="o", label=e["name"])
        ax2.plot(cs, [r["itl_p99"] * 1e3 for r in rs], marker="o", label=e["name"])
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent requests")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    ax1.set_ylabel("generated tokens / s")
    ax1.set_title("throughput")
    ax2.set_ylabel("p99 inter-token latency (ms)")
    ax2.set_yscale("log")
    ax2.set_title("p99 ITL")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--engine", action="append", required=True, help="NAME=PORT:MODEL (repeat)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    ap.add_argument("--requests-factor", type=int, default=2, help="requests per level = factor x concurrency")
    ap.add_argument("--min-requests", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--prompt-words", type=int, default=60, help="~1.06 tokens per word (+BOS) with a Llama SPM vocab: 60 words ~ 64 tokens")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--no-usage", action="append", default=[], help="engine NAME that gets no stream_options")
    ap.add_argument("--eos-bias", action="append", default=[], help="NAME=TOKEN_ID: logit_bias -100 on it")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--json")
    ap.add_argument("--plot")
    ap.add_argument("--title", default="tessera vs llama.cpp server")
    args = ap.parse_args()
    eos = {k: int(v) for k, v in (s.split("=", 1) for s in args.eos_bias)}
    engines = [parse_engine(s, set(args.no_usage), eos) for s in args.engine]

    for e in engines:
        w = run_level(e, 1, args.warmup, args, seed=12345)
        print("warmup %s: %d/%d ok %s" % (e["name"], w["ok"], w["requests"], w["errors"]), file=sys.stderr)
    rows = []
    for li, c in enumerate(args.concurrency):
        n = max(args.min_requests, args.requests_factor * c)
        order = engines if li % 2 == 0 else list(reversed(engines))
        for e in order:
            r = run_level(e, c, n, args, seed=1000 + c)   # same prompts for every engine
            rows.append(r)
            print("c=%d %s: %d/%d ok, %.1f tok/s, TTFT p50 %.3f p99 %.3f s, ITL p50 %.1f p99 %.1f ms, "
                  "%.1f tok/req, prompt %.1f tok, wall %.1f s, finish %s %s" % (
                      c, e["name"], r["ok"], n, r["tok_per_s"], r["ttft_p50"], r["ttft_p99"],
                      r["itl_p50"] * 1e3, r["itl_p99"] * 1e3, r["tokens_per_request"],
                      r["prompt_tokens_mean"] or float("nan"), r["wall_s"], r["finish"], r["errors"]),
                  file=sys.stderr, flush=True)
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(rows, f, indent=1)
    print(markdown(rows, engines))
    if args.plot:
        plot(rows, engines, args.plot, args.title)
        print("plot: " + args.plot, file=sys.stderr)
    return 0 if all(r["n_errors"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
