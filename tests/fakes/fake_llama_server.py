#!/usr/bin/env python3
"""fake_llama_server.py — a scripted stand-in for llama-server, for tests.

Accepts llama-server's command line (unknown flags are ignored), binds
127.0.0.1 on --port (0 = a free port) and prints the real server's
"listening on http://127.0.0.1:PORT" line on stderr. It prints that line as
soon as it is bound, before the fake model load, so a client sees /health
answer 503 for --fake-load-s seconds and then 200. (This llama-server version
prints the line only after loading; older ones printed it first. A supervisor
must cope with both.)

Endpoints: GET /health, /v1/health (no key needed), POST /completion and
POST /v1/chat/completions, streamed as SSE in the real server's event shapes
(native events end with "stop": true and no [DONE]; chat ends with
"data: [DONE]"), or as one JSON body when "stream" is false. The generated
text is "tok0 tok1 tok2 ...", --fake-tokens tokens long (ending as "eos"),
cut at n_predict / max_tokens ("limit") or at a "stop" string ("word").
At most --parallel requests generate at once; the others wait without
headers, like the real server's queue. With --api-key (or, like the real
server, LLAMA_API_KEY in the environment), the completion endpoints answer
401 without "Authorization: Bearer KEY".

Every --fake-* flag can also be set by the environment variable FAKE_LLAMA_*
(e.g. FAKE_LLAMA_MODE=hang, FAKE_LLAMA_LOAD_S=2); a flag wins over the
environment. Modes (--fake-mode):
  normal             generate as described
  hang               accept completion requests and never answer them
  die-mid-stream     exit the whole process after --fake-die-after tokens
                     (with --fake-die-on TEXT: only in a request whose prompt
                     contains TEXT, a poison job; the others generate)
  error-500          answer completions with HTTP 500 and a server_error body
  context-exceeded   answer completions with HTTP 400 exceed_context_size_error
  slow-first-token   send headers, sleep --fake-first-token-s, then stream
  exit-at-start      print a failed-model-load error and exit 1
Other knobs: --fake-instant (no delay between tokens, for benchmarks),
--fake-token-ms (delay between tokens, default 5), --fake-ignore-sigterm,
--fake-env-dump PATH (write "pid N", "arg X" and "env K=V" lines to PATH
once bound, for tests that check how the fake was started).
"""

import argparse
import json
import os
import random
import signal
import string
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = (
    "normal",
    "hang",
    "die-mid-stream",
    "error-500",
    "context-exceeded",
    "slow-first-token",
    "exit-at-start",
)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def fake_env(name, default):
    return os.environ.get("FAKE_LLAMA_" + name, default)


def parse_args(argv):
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    p.add_argument("-m", "--model", default="fake-model.gguf")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--api-key", default=os.environ.get("LLAMA_API_KEY"))
    p.add_argument("-np", "--parallel", type=int, default=1)
    p.add_argument("-c", "--ctx-size", type=int, default=4096)
    p.add_argument("-ngl", "--n-gpu-layers", "--gpu-layers", default="0")
    p.add_argument("-a", "--alias", default=None)
    p.add_argument("--fake-mode", choices=MODES, default=fake_env("MODE", "normal"))
    p.add_argument("--fake-load-s", type=float, default=float(fake_env("LOAD_S", "0")))
    p.add_argument("--fake-tokens", type=int, default=int(fake_env("TOKENS", "8")))
    p.add_argument("--fake-token-ms", type=float, default=float(fake_env("TOKEN_MS", "5")))
    p.add_argument("--fake-instant", action="store_true", default=fake_env("INSTANT", "") == "1")
    p.add_argument("--fake-die-after", type=int, default=int(fake_env("DIE_AFTER", "3")))
    p.add_argument("--fake-die-on", default=fake_env("DIE_ON", ""))
    p.add_argument("--fake-first-token-s", type=float,
                   default=float(fake_env("FIRST_TOKEN_S", "2")))
    p.add_argument("--fake-ignore-sigterm", action="store_true",
                   default=fake_env("IGNORE_SIGTERM", "") == "1")
    p.add_argument("--fake-env-dump", default=fake_env("ENV_DUMP", None))
    args, _unknown = p.parse_known_args(argv)
    if args.fake_instant:
        args.fake_token_ms = 0.0
    return args


def random_id():
    alphabet = string.ascii_letters + string.digits
    return "".join(random.choice(alphabet) for _ in range(32))


def error_body(code, message, err_type, **extra):
    err = {"code": code, "message": message, "type": err_type}
    err.update(extra)
    return {"error": err}


def timings(n_prompt, n_gen, prompt_ms, gen_ms):
    def per_token(ms, n):
        return ms / n if n else 0.0

    def per_second(ms, n):
        return 1e3 * n / ms if ms > 0 else 0.0

    return {
        "cache_n": 0,
        "prompt_n": n_prompt,
        "prompt_ms": prompt_ms,
        "prompt_per_token_ms": per_token(prompt_ms, n_prompt),
        "prompt_per_second": per_second(prompt_ms, n_prompt),
        "predicted_n": n_gen,
        "predicted_ms": gen_ms,
        "predicted_per_token_ms": per_token(gen_ms, n_gen),
        "predicted_per_second": per_second(gen_ms, n_gen),
    }


class Generation:
    """The token pieces of one request and why it ended."""

    def __init__(self, args, body, chat):
        if chat:
            prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
            limit = body.get("max_tokens", body.get("n_predict", -1))
        else:
            prompt = body.get("prompt", "")
            if not isinstance(prompt, str):
                prompt = json.dumps(prompt)
            limit = body.get("n_predict", body.get("max_tokens", -1))
        self.prompt = prompt
        self.n_prompt = max(1, len(prompt.split()))
        self.limit = limit if isinstance(limit, int) and limit >= 0 else None
        stop = body.get("stop", [])
        self.stop_words = [stop] if isinstance(stop, str) else [s for s in stop if s]
        self.count = args.fake_tokens
        self.text = ""
        self.n_gen = 0
        self.stop_type = "eos"
        self.stopping_word = ""

    def pieces(self):
        """Yield (token id, piece) until the generation ends; sets stop_type."""
        for i in range(self.count):
            if self.limit is not None and self.n_gen >= self.limit:
                self.stop_type = "limit"
                return
            piece = ("tok%d" if i == 0 else " tok%d") % i
            for word in self.stop_words:
                if word in self.text + piece:
                    self.stop_type = "word"
                    self.stopping_word = word
                    return
            self.text += piece
            self.n_gen += 1
            yield 100 + i, piece
        self.stop_type = "eos"

    def finish_reason(self):
        return "length" if self.stop_type == "limit" else "stop"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-llama-server"

    def log_message(self, format, *args):  # noqa: A002 — the real server logs no requests
        pass

    @property
    def cfg(self):
        return self.server.fake_args

    # ---- plumbing ----
    def send_json(self, status, obj):
        data = json.dumps(obj, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def write_chunk(self, text):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def send_event(self, obj):
        self.write_chunk("data: " + json.dumps(obj, separators=(",", ":")) + "\n\n")

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def read_body(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def authorized(self):
        key = self.cfg.api_key
        if not key:
            return True
        given = self.headers.get("Authorization", "") or self.headers.get("X-Api-Key", "")
        if given.startswith("Bearer "):
            given = given[len("Bearer "):]
        return given == key

    # ---- routes ----
    def do_GET(self):
        if self.path in ("/health", "/v1/health"):
            if time.monotonic() < self.server.ready_at:
                self.send_json(503, error_body(503, "Loading model", "unavailable_error"))
            else:
                self.send_json(200, {"status": "ok"})
            return
        self.send_json(404, error_body(404, "File Not Found", "not_found_error"))

    def do_POST(self):
        chat = self.path in ("/v1/chat/completions", "/chat/completions")
        if not chat and self.path not in ("/completion", "/completions"):
            self.send_json(404, error_body(404, "File Not Found", "not_found_error"))
            return
        if time.monotonic() < self.server.ready_at:
            self.send_json(503, error_body(503, "Loading model", "unavailable_error"))
            return
        if not self.authorized():
            log("srv  log_server_r: unauthorized: Invalid API Key")
            self.send_json(401, error_body(401, "Invalid API Key", "authentication_error"))
            return
        body = self.read_body()
        if body is None:
            self.send_json(400, error_body(400, "invalid JSON body", "invalid_request_error"))
            return
        mode = self.cfg.fake_mode
        if mode == "hang":
            while True:
                time.sleep(3600)
        if mode == "error-500":
            self.send_json(500, error_body(500, "fake internal error", "server_error"))
            return
        gen = Generation(self.cfg, body, chat)
        if mode == "context-exceeded":
            n_ctx = self.cfg.ctx_size // max(1, self.cfg.parallel)
            n_prompt = max(gen.n_prompt, n_ctx + 1)
            msg = ("request (%d tokens) exceeds the available context size (%d tokens), "
                   "try increasing it" % (n_prompt, n_ctx))
            self.send_json(400, error_body(400, msg, "exceed_context_size_error",
                                           n_prompt_tokens=n_prompt, n_ctx=n_ctx))
            return
        with self.server.slots:
            try:
                self.generate(gen, chat, bool(body.get("stream", False)), body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client went away: generation stops, like the real server

    def generate(self, gen, chat, stream, body):
        cfg = self.cfg
        slot = threading.get_ident() % max(1, cfg.parallel)
        cmpl_id = "chatcmpl-" + random_id()
        model = cfg.alias or os.path.basename(cfg.model)
        created = int(time.time())
        t0 = time.monotonic()
        if stream:
            self.start_stream()
            if cfg.fake_mode == "slow-first-token":
                time.sleep(cfg.fake_first_token_s)
        t_first = time.monotonic()

        def chat_chunk(delta, finish=None):
            return {
                "choices": [{"finish_reason": finish, "index": 0, "delta": delta}],
                "created": created,
                "id": cmpl_id,
                "model": model,
                "system_fingerprint": "b0-fake",
                "object": "chat.completion.chunk",
            }

        if stream and chat:
            self.send_event(chat_chunk({"role": "assistant", "content": None}))
        for token, piece in gen.pieces():
            if cfg.fake_token_ms > 0:
                time.sleep(cfg.fake_token_ms / 1e3)
            if stream and chat:
                self.send_event(chat_chunk({"content": piece}))
            elif stream:
                self.send_event({
                    "index": 0,
                    "content": piece,
                    "tokens": [token],
                    "stop": False,
                    "id_slot": slot,
                    "tokens_predicted": gen.n_gen,
                    "tokens_evaluated": gen.n_prompt,
                })
            if (cfg.fake_mode == "die-mid-stream" and gen.n_gen >= cfg.fake_die_after
                    and cfg.fake_die_on in gen.prompt):
                log("fake: dying mid-stream after %d tokens" % gen.n_gen)
                os._exit(1)
        t_end = time.monotonic()
        stats = timings(gen.n_prompt, gen.n_gen, (t_first - t0) * 1e3, (t_end - t_first) * 1e3)
        usage = {
            "completion_tokens": gen.n_gen,
            "prompt_tokens": gen.n_prompt,
            "total_tokens": gen.n_gen + gen.n_prompt,
            "prompt_tokens_details": {"cached_tokens": 0},
        }
        if chat:
            if not stream:
                self.send_json(200, {
                    "choices": [{
                        "finish_reason": gen.finish_reason(),
                        "index": 0,
                        "message": {"role": "assistant", "content": gen.text},
                    }],
                    "created": created,
                    "model": model,
                    "system_fingerprint": "b0-fake",
                    "object": "chat.completion",
                    "usage": usage,
                    "id": cmpl_id,
                    "timings": stats,
                })
                return
            final = chat_chunk({}, gen.finish_reason())
            events = [final]
            if (body.get("stream_options") or {}).get("include_usage"):
                events.append(dict(chat_chunk({}), choices=[], usage=usage))
            events[-1]["timings"] = stats
            for ev in events:
                self.send_event(ev)
            self.write_chunk("data: [DONE]\n\n")
            self.end_stream()
            return
        final = {
            "index": 0,
            "content": "" if stream else gen.text,
            "tokens": [],
            "id_slot": slot,
            "stop": True,
            "model": model,
            "tokens_predicted": gen.n_gen,
            "tokens_evaluated": gen.n_prompt,
            "generation_settings": {"n_predict": -1 if gen.limit is None else gen.limit},
            "prompt": gen.prompt,
            "has_new_line": False,
            "truncated": False,
            "stop_type": gen.stop_type,
            "stopping_word": gen.stopping_word,
            "tokens_cached": gen.n_prompt + gen.n_gen,
            "timings": stats,
        }
        if stream:
            self.send_event(final)
            self.end_stream()
        else:
            self.send_json(200, final)


def dump_env(path, argv):
    lines = ["pid %d" % os.getpid()]
    lines += ["arg " + a for a in argv]
    lines += ["env %s=%s" % kv for kv in sorted(os.environ.items())]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def main(argv):
    args = parse_args(argv)
    if args.fake_ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    log("build: 0 (fake) with python %s" % sys.version.split()[0])
    log("system info: n_threads = 1, fake = 1")
    log("main: loading model")
    if args.fake_mode == "exit-at-start":
        log("llama_model_load: error loading model: llama_model_loader: failed to load model "
            "from %s" % args.model)
        log("llama_model_load_from_file_impl: failed to load model")
        log("srv    load_model: failed to load model, '%s'" % args.model)
        log("srv    operator(): operator(): cleaning up before exit...")
        log("main: exiting due to model loading error")
        return 1
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.fake_args = args
    server.slots = threading.BoundedSemaphore(max(1, args.parallel))
    server.ready_at = time.monotonic() + args.fake_load_s
    port = server.server_address[1]
    if args.fake_env_dump:
        dump_env(args.fake_env_dump, argv)
    log("srv          main: listening on http://127.0.0.1:%d" % port)
    if args.fake_load_s > 0:
        threading.Timer(args.fake_load_s, log, ("srv          main: model loaded",)).start()
    else:
        log("srv          main: model loaded")
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
