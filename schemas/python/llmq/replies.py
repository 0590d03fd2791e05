"""llmq.replies — the replies of llmq wire contract v1 (schemas/spec.md) in Python.

decode_reply() reads a chunk, done, error or heartbeat into a dataclass,
checking each field's type; unknown fields are ignored (evolution rule).
Timings, GPU readings and logprobs come back as floats. llmq.codec re-exports
all of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Optional, Tuple, Union

from .codec import (_CODE_RE, _MISSING, ID_MAX_BYTES, KNOWN_CODES, NESTING_MAX, RETRYABLE_CODES,
                    VERSION, _is_int, _is_number, _text_ok, _too_deep, _unpack)
from .errors import InvalidReply

@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Timings:
    """Milliseconds, and tokens per second. queue_ms counts from the job's
    Kafka timestamp, so the producer's clock skew shows in it."""

    queue_ms: float
    ttft_ms: float
    gen_ms: float
    tokens_per_s: float


Token = Union[str, bytes]  # bytes: a token that is not whole UTF-8 characters on its own


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its text, the natural log of its probability, and
    the most likely alternatives at its place (token, logprob), most likely
    first."""

    token: Token
    logprob: float
    top: Tuple[Tuple[Token, float], ...]


@dataclass(frozen=True)
class Chunk:
    """A piece of output of one run of a job; `logprobs` when the job asked
    for them (the tokens since the previous chunk)."""

    type: ClassVar[str] = "chunk"
    id: str
    run: str
    seq: int
    text: str
    logprobs: Optional[Tuple[TokenLogprob, ...]] = None


@dataclass(frozen=True)
class Done:
    """The terminal reply of a job that generated: `text` is the whole output
    of `run`."""

    type: ClassVar[str] = "done"
    id: str
    run: str
    text: str
    finish: str
    usage: Usage
    timings: Timings
    worker: str
    meta: Optional[Dict[Any, Any]] = None
    logprobs: Optional[Tuple[TokenLogprob, ...]] = None


@dataclass(frozen=True)
class Error:
    """The terminal reply of a job that failed or was rejected. `id` is ""
    when the job's id could not be read; `run` is "" when it never ran.
    `partial_text`: for expired and cancelled jobs that were generating, the
    text their run generated before it was stopped."""

    type: ClassVar[str] = "error"
    id: str
    run: str
    code: str
    message: str
    retryable: bool
    worker: str
    meta: Optional[Dict[Any, Any]] = None
    partial_text: Optional[str] = None


@dataclass(frozen=True)
class Gpu:
    """A GPU reading; None for what the backend cannot read (all of it for `none`)."""

    backend: str
    name: Optional[str]
    vram_total_bytes: Optional[int]
    vram_used_bytes: Optional[int]
    temp_edge_c: Optional[float]
    temp_junction_c: Optional[float]
    temp_mem_c: Optional[float]
    power_w: Optional[float]
    busy_percent: Optional[float]


@dataclass(frozen=True)
class Counters:
    jobs_done: int
    jobs_failed: int
    tokens: int


@dataclass(frozen=True)
class Heartbeat:
    """A worker's periodic status, from the metrics topic."""

    type: ClassVar[str] = "heartbeat"
    worker: str
    host: str
    model: str
    state: str
    ts_ms: int
    gpu: Gpu
    slots_busy: int
    slots_total: int
    counters: Counters


Reply = Union[Chunk, Done, Error, Heartbeat]


# ---- replies -----------------------------------------------------------------

class _Reader:
    """Typed access to the fields of one reply map; every failure is an
    InvalidReply naming the message type and the field."""

    def __init__(self, m, where: str):
        self.m = m
        self.where = where

    def _value(self, name: str, ok, what: str, optional: bool = False):
        x = self.m.get(name, _MISSING)
        if x is _MISSING and optional:
            return None
        if x is _MISSING or not ok(x):
            raise InvalidReply(f"{self.where}.{name}: "
                               + ("missing" if x is _MISSING else f"must be {what}"))
        return x

    def text(self, name, min_bytes=0, max_bytes=None):
        def ok(x):
            n = len(x.encode("utf-8", "surrogateescape")) if isinstance(x, str) else -1
            return (n >= min_bytes and (max_bytes is None or n <= max_bytes)
                    and _text_ok(x))
        what = "a non-empty string" if min_bytes else "a string"
        return self._value(name, ok, what + (f" of at most {max_bytes} bytes" if max_bytes
                                             else ""))

    def optional_text(self, name):
        return self._value(name, lambda x: x is None or (isinstance(x, str) and _text_ok(x)),
                           "a string or nil")

    def integer(self, name, minimum=0, nullable=False):
        def ok(x):
            return (nullable and x is None) or (_is_int(x) and x >= minimum)
        return self._value(name, ok, f"an integer >= {minimum}" + (" or nil" if nullable else ""))

    def number(self, name, minimum=None, maximum=None, nullable=False):
        def ok(x):
            if nullable and x is None:
                return True
            return (_is_number(x) and (minimum is None or x >= minimum)
                    and (maximum is None or x <= maximum))
        x = self._value(name, ok, "a number" + (f" >= {minimum}" if minimum is not None else "")
                        + (f" <= {maximum}" if maximum is not None else "")
                        + (" or nil" if nullable else ""))
        return None if x is None else float(x)

    def boolean(self, name):
        return self._value(name, lambda x: isinstance(x, bool), "a boolean")

    def mapping(self, name, optional=False):
        return self._value(name, lambda x: isinstance(x, dict), "a map", optional)

    def sub(self, name):
        return _Reader(self.mapping(name), f"{self.where}.{name}")

    def logprobs(self) -> Optional[Tuple[TokenLogprob, ...]]:
        x = self.m.get("logprobs", _MISSING)
        if x is _MISSING:
            return None
        try:
            return tuple(_token_logprob(entry) for entry in x)
        except (TypeError, ValueError):
            raise InvalidReply(f"{self.where}.logprobs: must be an array of "
                               "[token, logprob <= 0, [[token, logprob], ...]]") from None


def _token(x) -> Token:
    if isinstance(x, bytes) or (isinstance(x, str) and _text_ok(x)):
        return x
    raise ValueError("token")


def _logprob(x) -> float:
    if not _is_number(x) or x > 0:
        raise ValueError("logprob")
    return float(x)


def _token_logprob(entry) -> TokenLogprob:
    token, logprob, top = entry  # TypeError / ValueError unless a 3-element array
    if not isinstance(top, list) or any(not isinstance(alt, list) or len(alt) != 2
                                        for alt in top):
        raise ValueError("top")
    return TokenLogprob(_token(token), _logprob(logprob),
                        tuple((_token(t), _logprob(lp)) for t, lp in top))


def _chunk(r: _Reader) -> Chunk:
    return Chunk(id=r.text("id", 1, ID_MAX_BYTES), run=r.text("run", 1), seq=r.integer("seq"),
                 text=r.text("text"), logprobs=r.logprobs())


def _done(r: _Reader) -> Done:
    u, t = r.sub("usage"), r.sub("timings")
    return Done(id=r.text("id", 1, ID_MAX_BYTES), run=r.text("run", 1), text=r.text("text"),
                finish=r.text("finish", 1),
                usage=Usage(prompt_tokens=u.integer("prompt_tokens"),
                            completion_tokens=u.integer("completion_tokens")),
                timings=Timings(queue_ms=t.number("queue_ms"), ttft_ms=t.number("ttft_ms", 0),
                                gen_ms=t.number("gen_ms", 0),
                                tokens_per_s=t.number("tokens_per_s", 0)),
                worker=r.text("worker"), meta=r.mapping("meta", optional=True),
                logprobs=r.logprobs())


def _error(r: _Reader) -> Error:
    code = r._value("code", lambda x: isinstance(x, str) and bool(_CODE_RE.fullmatch(x)),
                    "a code name ([a-z][a-z_]*)")
    retryable = r.boolean("retryable")
    if code in KNOWN_CODES and retryable != (code in RETRYABLE_CODES):
        raise InvalidReply(f"error.retryable: must be {str(code in RETRYABLE_CODES).lower()} "
                           f"for code {code}")
    run = r.text("run")
    partial = r._value("partial_text", lambda x: isinstance(x, str) and _text_ok(x), "a string",
                       optional=True)
    if partial is not None and (not run or (code in KNOWN_CODES and
                                            code not in ("expired", "cancelled"))):
        raise InvalidReply("error.partial_text: only after the job ran, and of the known codes "
                           "only for expired and cancelled")
    return Error(id=r.text("id", 0, ID_MAX_BYTES), run=run, code=code,
                 message=r.text("message"), retryable=retryable, worker=r.text("worker"),
                 meta=r.mapping("meta", optional=True), partial_text=partial)


def _heartbeat(r: _Reader) -> Heartbeat:
    g, c = r.sub("gpu"), r.sub("counters")
    gpu = Gpu(backend=g.text("backend", 1), name=g.optional_text("name"),
              vram_total_bytes=g.integer("vram_total_bytes", nullable=True),
              vram_used_bytes=g.integer("vram_used_bytes", nullable=True),
              temp_edge_c=g.number("temp_edge_c", nullable=True),
              temp_junction_c=g.number("temp_junction_c", nullable=True),
              temp_mem_c=g.number("temp_mem_c", nullable=True),
              power_w=g.number("power_w", 0, nullable=True),
              busy_percent=g.number("busy_percent", 0, 100, nullable=True))
    return Heartbeat(worker=r.text("worker", 1), host=r.text("host"), model=r.text("model"),
                     state=r.text("state", 1), ts_ms=r.integer("ts_ms"), gpu=gpu,
                     slots_busy=r.integer("slots_busy"), slots_total=r.integer("slots_total", 1),
                     counters=Counters(jobs_done=c.integer("jobs_done"),
                                       jobs_failed=c.integer("jobs_failed"),
                                       tokens=c.integer("tokens")))


_REPLY_READERS = {"chunk": _chunk, "done": _done, "error": _error, "heartbeat": _heartbeat}


def decode_reply(data: bytes) -> Reply:
    """Decode a chunk, done, error or heartbeat message. Raises InvalidReply
    when the bytes are not such a v1 message; unknown fields are ignored.
    Timings and GPU readings come back as floats, whether the writer sent
    an int or a float."""
    try:
        m = _unpack(data)
    except (ValueError, TypeError):
        raise InvalidReply("not one complete msgpack value") from None
    if not isinstance(m, dict):
        raise InvalidReply("a reply must be a msgpack map")
    if _too_deep(m):
        raise InvalidReply(f"containers nested over {NESTING_MAX} deep")
    v = m.get("v", _MISSING)
    if not _is_int(v) or v != VERSION:
        raise InvalidReply(f"v: must be the integer {VERSION} (got {v!r})"
                           if v is not _MISSING else "v: missing")
    kind = m.get("type")
    reader = _REPLY_READERS.get(kind) if isinstance(kind, str) else None
    if reader is None:
        raise InvalidReply(f"type: not a v1 reply type: {kind!r}")
    return reader(_Reader(m, kind))
