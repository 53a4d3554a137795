# The client API of `tessera serve --capnp HOST:PORT` (docs/SERVING.md, "Cap'n Proto
# client API"): programs submit completions and receive their tokens as they are
# generated, through a sink capability they provide, and can cancel them.
#
# Rules (as for schemas/worker.capnp, docs/CONTROL_PLANE.md):
#  - Ordinals (@N) are never renumbered, reused or retyped; fields are never removed
#    (rename to obsoleteX instead). A new field takes the next ordinal and a default
#    meaning "the old behaviour", so clients built before it keep working.
#  - The file id below never changes.
#
# Validation is the HTTP API's (server/openai_api.h): a request is checked exactly as
# the equivalent /v1/completions or /v1/chat/completions body would be, and refused
# with a capnp exception whose description is the tessera message, tagged with its
# kind: "[tessera:invalid_input] max_tokens must be >= 0 ..." (the field named as in
# the OpenAI JSON API).

@0xebc4b4058db9bcfb;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("tessera::client");

struct ChatMessage {
  role @0 :Text;     # system, developer, user, assistant
  content @1 :Text;
}

struct CompletionRequest {
  model @0 :Text;                 # empty: the served model; else it must match it
  # The prompt: exactly one of prompt text, prompt token ids, or chat messages.
  prompt @1 :Text;                # a completion prompt (BOS added, as over HTTP)
  promptTokens @2 :List(Int32);   # a completion prompt as token ids (when non-empty)
  messages @3 :List(ChatMessage); # a chat (rendered with the server's chat template)

  maxTokens :union {
    default @4 :Void;             # 16 for completions, the rest of the context for chat
    value @5 :Int64;              # new tokens at most; negative or too large: refused
  }
  temperature @6 :Float32 = 1.0;  # 0: greedy
  topP @7 :Float32 = 1.0;
  topK @8 :Int32 = 0;             # 0: off
  seed :union {
    random @9 :Void;
    value @10 :UInt64;            # reproducible sampling
  }
  stop @11 :List(Text);           # up to 4 stop strings (not returned)
  topLogprobs @12 :Int32 = 0;     # 0..5 (completions) / 0..20 (chat): also the most likely
                                  # alternatives of every generated token (TokenSink.token's top)
  echo @13 :Bool = false;         # first send the prompt's per-token logprobs (TokenSink.prompt),
                                  # as echo + logprobs over HTTP (lm-evaluation-harness scoring)
}

struct TokenLogprob {
  tokenId @0 :Int32;
  logprob @1 :Float32;
}

struct PromptToken {
  tokenId @0 :Int32;
  logprob @1 :Float32;             # log p(token | the tokens before); NaN for the first token
  top @2 :List(TokenLogprob);      # topLogprobs alternatives, most likely first
}

struct Usage {
  promptTokens @0 :Int64;
  completionTokens @1 :Int64;
  totalTokens @2 :Int64;
}

# Implemented by the client. The server calls token() once per generated token, in
# order (a streaming call: the server keeps a window of calls in flight and waits when
# the client is slow), then finish() once. If a call fails (the client is gone), the
# request is cancelled.
interface TokenSink {
  # delta: text ready to show (valid UTF-8; may be empty while a multi-byte character
  # or a possible stop string is held back, and may carry text held back before; the
  # token that completes a stop string carries only the text before it).
  # tokenId: the generated token; -1 for a last call that flushes held-back text.
  # logprob: log p(token) under the temperature-1 distribution (0 when tokenId = -1).
  # top: the topLogprobs most likely tokens at this position, most likely first.
  token @0 (delta :Text, tokenId :Int32, logprob :Float32, top :List(TokenLogprob)) -> stream;
  # reason: "stop" (end-of-sequence token or stop string), "length" (maxTokens or the
  # context), "cancelled" (Request.cancel), "error" (the server failed the request;
  # message says why). Any held-back text is sent as a last token() before finish.
  finish @1 (reason :Text, usage :Usage, message :Text);
  # Only with CompletionRequest.echo: every prompt token with its logprob, once, before
  # the first token() call.
  prompt @2 (tokens :List(PromptToken));
}

# A submitted request. Dropping it does not cancel the request; cancel() does.
interface Request {
  cancel @0 ();   # the stream ends with finish("cancelled") unless it had ended already
  id @1 () -> (id :UInt64);
}

struct ModelInfo {
  id @0 :Text;           # the name to send as CompletionRequest.model
  maxContext @1 :Int64;  # positions per sequence (prompt + generated)
  vocabSize @2 :Int32;
}

struct Stats {
  waiting @0 :Int64;          # queued requests
  running @1 :Int64;          # sequences in the batch
  kvBlocksUsed @2 :Int64;
  kvBlocksFree @3 :Int64;
  kvBlocksCached @4 :Int64;   # free, but holding a reusable prefix
  prefixHitBlocks @5 :Int64;
  steps @6 :Int64;
  preemptions @7 :Int64;
  stepTokens @8 :Int64;
  stepSeconds @9 :Float64;    # cumulative wall time of steps
  submitted @10 :Int64;       # requests accepted over this API since start
  # Speculative decoding (serve --draft), since start: target passes that verified a
  # draft, draft tokens proposed, of which accepted.
  verifyPasses @11 :Int64;
  draftTokens @12 :Int64;
  acceptedTokens @13 :Int64;
}

interface Tessera {
  # Queues a request; tokens go to sink. Throws (a capnp exception) when the request
  # is invalid or the queue is full ("[tessera:resource] the server is busy ...").
  submit @0 (request :CompletionRequest, sink :TokenSink) -> (handle :Request);
  models @1 () -> (models :List(ModelInfo));
  stats @2 () -> (stats :Stats);
}

# The bootstrap capability of a connection. connect() checks the API key (any key when
# the server has none; "[tessera:invalid_input] invalid API key" otherwise).
interface Gate {
  connect @0 (apiKey :Text) -> (tessera :Tessera);
}
