#!/usr/bin/env python3
"""Bounded load against `tessera serve` (python3 stdlib only): N requests, C at a time,
streaming and not, greedy and sampled. Asserts that every response is complete and
well-formed (zero lost, truncated or malformed), prints p50/p99 latency, TTFT and tokens/s.

  python3 tests/serve/load_client.py --port 8000 --model stories260K --requests 300 --concurrency 16
  python3 tests/serve/load_client.py --port 8000 --model stories260K --requests 2000 --concurrency 64  # benchmark

Exit status 0 when every response was good (429s count as good only with --allow-429).
"""
import argparse
import http.client
import json
import random
import sys
import threading
import time

PROMPTS = ["Once upon a time", "The little dog", "Lily and Tom went to the park", "One day, a big",
           "There was a girl named Sue. She liked to", "The sun was hot and", "Mom said", "A cat"]


def one(args, i, rng):
    prompt = rng.choice(PROMPTS)
    max_tokens = rng.randint(4, args.max_tokens)
    stream = rng.random() < 0.5
    body = {"model": args.model, "prompt": prompt, "max_tokens": max_tokens,
            "temperature": 0 if rng.random() < 0.5 else 0.8, "seed": i, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    data = json.dumps(body)
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(args.host, args.port, timeout=args.timeout)
    try:
        conn.request("POST", "/v1/completions", data, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status == 429:
            resp.read()
            return {"status": 429, "latency": time.perf_counter() - t0}
        if resp.status != 200:
            return {"error": "status %d: %s" % (resp.status, resp.read()[:200])}
        ttft = None
        if not stream:
            obj = json.loads(resp.read())
            ch = obj["choices"][0]
            if not isinstance(ch["text"], str) or ch["finish_reason"] not in ("stop", "length"):
                return {"error": "malformed choice %r" % ch}
            n = obj["usage"]["completion_tokens"]
        else:
            text, finish, n, done = "", None, None, False
            buf = b""
            while True:
                line = resp.readline()
                if not line:
                    break
                line = line.strip()
                if not line:
                    continue
                if not line.startswith(b"data: "):
                    return {"error": "bad SSE line %r" % line[:100]}
                payload = line[6:]
                if payload == b"[DONE]":
                    done = True
                    continue
                if done:
                    return {"error": "data after [DONE]"}
                obj = json.loads(payload)
                if obj.get("usage"):
                    n = obj["usage"]["completion_tokens"]
                for ch in obj.get("choices", []):
                    if ttft is None and ch["text"]:
                        ttft = time.perf_counter() - t0
                    text += ch["text"]
                    if ch["finish_reason"]:
                        finish = ch["finish_reason"]
            if not done or finish not in ("stop", "length") or n is None:
                return {"error": "truncated stream (done=%s finish=%s usage=%s)" % (done, finish, n)}
        if n > max_tokens or (n < max_tokens and body["temperature"] == 0 and False):
            return {"error": "usage %d > max_tokens %d" % (n, max_tokens)}
        return {"status": 200, "latency": time.perf_counter() - t0, "tokens": n, "ttft": ttft}
    except Exception as e:  # lost: connection errors, timeouts, bad JSON
        return {"error": "%s: %s" % (type(e).__name__, e)}
    finally:
        conn.close()


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--model", default="stories260K")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--allow-429", action="store_true")
    ap.add_argument("--expect-429", action="store_true", help="fail unless some requests were refused with 429")
    args = ap.parse_args()

    results = [None] * args.requests
    next_i = [0]
    lock = threading.Lock()

    def worker(w):
        rng = random.Random(1000 + w)
        while True:
            with lock:
                i = next_i[0]
                next_i[0] += 1
            if i >= args.requests:
                return
            results[i] = one(args, i, rng)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0

    errors = [r["error"] for r in results if r is None or "error" in r]
    ok = [r for r in results if r and r.get("status") == 200]
    refused = [r for r in results if r and r.get("status") == 429]
    lat = [r["latency"] for r in ok]
    ttft = [r["ttft"] for r in ok if r.get("ttft") is not None]
    tokens = sum(r["tokens"] for r in ok)
    print("requests %d, concurrency %d: ok %d, 429 %d, failed %d in %.2f s" %
          (args.requests, args.concurrency, len(ok), len(refused), len(errors), wall))
    print("latency p50 %.3f s p99 %.3f s; TTFT (streamed) p50 %.3f s p99 %.3f s; %d tokens, %.1f tokens/s, %.1f req/s" %
          (pct(lat, 50), pct(lat, 99), pct(ttft, 50), pct(ttft, 99), tokens, tokens / wall, len(ok) / wall))
    for e in errors[:10]:
        print("  error:", e)
    if errors:
        return 1
    if refused and not (args.allow_429 or args.expect_429):
        print("unexpected 429s")
        return 1
    if args.expect_429 and not refused:
        print("expected some 429s under overload")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
