#!/usr/bin/env python3
"""Drives a running `tessera serve` with the official `openai` Python client (PyPI):
completions and chat, streaming and not, logprobs, usage. Not in CI (it needs the
`openai` package); docs/SERVING.md gives the command and the last result.

    .venv-tools/bin/pip install openai
    build/tessera serve --model assets/models/stories260K/stories260K.gguf --http 127.0.0.1:8000 &
    .venv-tools/bin/python tools/openai_client_check.py --base-url http://127.0.0.1:8000/v1

With --expect-file FILE, the greedy completion of --prompt (--max-tokens) must equal
FILE's text (for example `tessera generate --temperature 0 --no-echo` output).
Exit status 0 when every check passes; each check prints one line.
"""
import argparse
import math
import sys

import openai


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    ap.add_argument("--api-key", default="none")
    ap.add_argument("--model", default=None, help="default: the first of /v1/models")
    ap.add_argument("--prompt", default="Once upon a time")
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--expect-file", default=None)
    args = ap.parse_args()

    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0, timeout=60)
    failures = []

    def check(name, cond, detail=""):
        print(("ok   " if cond else "FAIL ") + name + (f": {detail}" if detail and not cond else ""))
        if not cond:
            failures.append(name)

    models = client.models.list()
    ids = [m.id for m in models.data]
    check("models.list", len(ids) >= 1, str(ids))
    model = args.model or ids[0]

    # completions, not streamed, greedy, with logprobs
    c = client.completions.create(model=model, prompt=args.prompt, max_tokens=args.max_tokens, temperature=0,
                                  logprobs=2)
    text = c.choices[0].text
    check("completions (greedy)", len(text) > 0 and c.choices[0].finish_reason in ("stop", "length"),
          repr(c.choices[0]))
    lp = c.choices[0].logprobs
    check("completions logprobs",
          lp is not None and len(lp.tokens) == c.usage.completion_tokens and
          all(x <= 0 and math.isfinite(x) for x in lp.token_logprobs) and all(len(t) == 2 for t in lp.top_logprobs),
          repr(lp))
    check("completions usage", c.usage.prompt_tokens > 0 and
          c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens, repr(c.usage))
    if args.expect_file:
        expect = open(args.expect_file, encoding="utf-8").read()
        check("completions equal the expected text", text == expect, f"{text!r} != {expect!r}")

    # completions, streamed: the deltas add up to the same text
    parts, finish, usage = [], None, None
    for chunk in client.completions.create(model=model, prompt=args.prompt, max_tokens=args.max_tokens,
                                           temperature=0, stream=True, stream_options={"include_usage": True}):
        if chunk.usage:
            usage = chunk.usage
        for ch in chunk.choices:
            parts.append(ch.text)
            finish = ch.finish_reason or finish
    check("completions (streamed) equal the plain text", "".join(parts) == text, f"{''.join(parts)!r} != {text!r}")
    check("completions stream finish + usage", finish in ("stop", "length") and usage is not None and
          usage.completion_tokens == c.usage.completion_tokens, f"{finish} {usage}")

    # echo + logprobs with max_tokens 0: prompt scoring (lm-evaluation-harness style)
    e = client.completions.create(model=model, prompt=args.prompt, max_tokens=0, echo=True, logprobs=0)
    elp = e.choices[0].logprobs
    check("echo scoring", e.choices[0].text == args.prompt and elp.token_logprobs[0] is None and
          all(x is not None and x <= 0 for x in elp.token_logprobs[1:]), repr(e.choices[0]))

    # chat, not streamed, with logprobs
    msgs = [{"role": "system", "content": "You tell stories."}, {"role": "user", "content": "Tell me a story."}]
    r = client.chat.completions.create(model=model, messages=msgs, max_tokens=args.max_tokens, temperature=0,
                                       logprobs=True, top_logprobs=2)
    m = r.choices[0].message
    check("chat (greedy)", m.role == "assistant" and len(m.content) > 0, repr(r.choices[0]))
    clp = r.choices[0].logprobs
    check("chat logprobs", clp is not None and len(clp.content) == r.usage.completion_tokens and
          all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in clp.content), repr(clp))

    # chat, streamed
    parts, finish, role = [], None, None
    for chunk in client.chat.completions.create(model=model, messages=msgs, max_tokens=args.max_tokens,
                                                temperature=0, stream=True):
        for ch in chunk.choices:
            role = ch.delta.role or role
            parts.append(ch.delta.content or "")
            finish = ch.finish_reason or finish
    check("chat (streamed) equals the plain answer", role == "assistant" and "".join(parts) == m.content,
          f"{''.join(parts)!r} != {m.content!r}")
    check("chat stream finish", finish in ("stop", "length"), str(finish))

    # seeded sampling is reproducible; n choices
    a = client.completions.create(model=model, prompt=args.prompt, max_tokens=12, temperature=0.9, seed=5, n=2)
    b = client.completions.create(model=model, prompt=args.prompt, max_tokens=12, temperature=0.9, seed=5, n=2)
    check("seeded n=2 reproducible", len(a.choices) == 2 and [x.text for x in a.choices] == [x.text for x in b.choices],
          f"{a.choices} vs {b.choices}")

    # errors: OpenAI's error objects come through as the client's exceptions
    try:
        client.completions.create(model=model, prompt=args.prompt, max_tokens=-1)
        check("bad max_tokens -> 400", False, "accepted")
    except openai.BadRequestError as ex:
        check("bad max_tokens -> 400", "max_tokens" in str(ex), str(ex))
    try:
        client.completions.create(model="no-such-model", prompt=args.prompt, max_tokens=2)
        check("unknown model -> 404", False, "accepted")
    except openai.NotFoundError as ex:
        check("unknown model -> 404", "model" in str(ex), str(ex))

    print(f"openai {openai.__version__}: {'all checks passed' if not failures else f'{len(failures)} failed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
