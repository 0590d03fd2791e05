"""llmq.codec — the llmq wire contract v1 (schemas/spec.md) in Python.

encode_job() turns a job (a dict, or a Job) into the msgpack bytes a worker
reads: fields in the order of the spec's field table, then unknown fields in
the order given, integers in their smallest form, floats as float64, str
for text and bin for bytes; exactly the bytes of schemas/vectors.

validate_job() checks a job the way a worker decodes it (types, ranges,
exactly one of prompt / messages, id length, nesting) and raises InvalidJob
with the code and the field the worker would answer; the first broken rule in
table order wins, as in the worker. decode_job() does the same for bytes, so
tools can judge a raw message. Admission (allowlist, prompt size, model,
deadline) needs the worker's policy and clock and is left to the worker.

decode_reply() (from llmq.replies, re-exported here) reads a chunk, done,
error or heartbeat into a dataclass. Cancel messages (the control topic) are
in llmq.control.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

import msgpack

from .errors import InvalidJob

VERSION = 1
ID_MAX_BYTES = 128
STOP_MAX = 16
TOPIC_MAX = 249
NESTING_MAX = 32
LOGPROBS_MAX = 20
LORA_MAX = 16
CHUNK_MS_MAX = 60000

# The job fields, in the order of the field table in schemas/spec.md.
JOB_FIELDS = ("v", "id", "prompt", "messages", "max_tokens", "temperature", "top_p", "top_k",
              "min_p", "seed", "repeat_penalty", "stop", "grammar", "json_schema", "stream",
              "reply_to", "deadline_ms", "model", "meta", "logprobs", "lora", "chunk_ms")

# Error codes whose replies say retryable = true; the other known codes say false.
RETRYABLE_CODES = frozenset({"model_mismatch", "backend_error", "backend_failed", "internal"})
KNOWN_CODES = RETRYABLE_CODES | frozenset({
    "malformed", "unsupported_version", "invalid_id", "invalid_field", "invalid_input",
    "prompt_too_large", "reply_to_denied", "expired", "context_exceeded", "cancelled"})

_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1
_UINT64_MAX = 2 ** 64 - 1
_TOPIC_RE = re.compile(r"[a-zA-Z0-9._-]{1,%d}" % TOPIC_MAX)
_CODE_RE = re.compile(r"[a-z][a-z_]*")
_MISSING = object()


# ---- messages as dataclasses ------------------------------------------------

@dataclass
class Job:
    """A v1 job. None leaves an optional field out; `extra` holds fields this
    version does not know (sent after the known ones, in their order)."""

    id: str
    prompt: Optional[str] = None
    messages: Optional[List[Dict[str, Any]]] = None
    max_tokens: Optional[int] = None
    temperature: Optional[float] = None
    top_p: Optional[float] = None
    top_k: Optional[int] = None
    min_p: Optional[float] = None
    seed: Optional[int] = None
    repeat_penalty: Optional[float] = None
    stop: Optional[List[str]] = None
    grammar: Optional[str] = None
    json_schema: Optional[Dict[str, Any]] = None
    stream: Optional[bool] = None
    reply_to: Optional[str] = None
    deadline_ms: Optional[int] = None
    model: Optional[str] = None
    meta: Optional[Dict[Any, Any]] = None
    logprobs: Optional[int] = None
    lora: Optional[List[Dict[str, Any]]] = None
    chunk_ms: Optional[int] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    v: int = VERSION

    def to_dict(self) -> Dict[str, Any]:
        """The job map, fields in table order, absent fields left out."""
        d = {name: getattr(self, name) for name in JOB_FIELDS if getattr(self, name) is not None}
        d.update((k, v) for k, v in self.extra.items() if k not in d)
        return d




# ---- msgpack in and out ------------------------------------------------------

class _Map(dict):
    """A msgpack map as unpacked: a dict, plus what a dict cannot say: the
    keys given more than once, and whether some key was not a str."""

    __slots__ = ("repeated", "odd_keys")


def _hashable(key):
    """Array and map keys (legal msgpack, only ever inside meta) as tuples."""
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    if isinstance(key, dict):
        return tuple((_hashable(k), _hashable(v)) for k, v in key.items())
    return key


def _map_from_pairs(pairs):
    m = _Map()
    m.repeated = set()
    m.odd_keys = False
    for key, value in pairs:
        if not isinstance(key, str):
            m.odd_keys = True
            key = _hashable(key)
        if key in m:
            m.repeated.add(key)
        m[key] = value
    return m


def _unpack(data: bytes):
    """One complete msgpack value (nothing after it); str holding bad UTF-8
    comes back with surrogates, which the text checks refuse. ValueError
    when the bytes are not one complete value."""
    return msgpack.unpackb(bytes(data), raw=False, unicode_errors="surrogateescape",
                           strict_map_key=False, object_pairs_hook=_map_from_pairs)


def encode_job(job: Union[Job, Dict[str, Any]]) -> bytes:
    """The msgpack bytes of a job, after validate_job(). Known fields go in
    table order, then the unknown ones in the order given."""
    d = job.to_dict() if isinstance(job, Job) else job
    validate_job(d)
    ordered = {name: d[name] for name in JOB_FIELDS if name in d}
    ordered.update((k, v) for k, v in d.items() if k not in ordered)
    return msgpack.packb(ordered, use_bin_type=True)


def decode_job(data: bytes) -> Job:
    """Decode and validate job bytes as a worker does (without admission).
    Raises InvalidJob with the worker's code, field and message."""
    try:
        m = _unpack(data)
    except (ValueError, TypeError):
        raise InvalidJob("malformed", "not one complete msgpack value (cut short, byte 0xc1, "
                         f"trailing bytes, or nested over {NESTING_MAX} deep)") from None
    validate_job(m)
    known = {name: m[name] for name in JOB_FIELDS if name in m}
    return Job(**known, extra={k: v for k, v in m.items() if k not in known})


# ---- job validation ----------------------------------------------------------

def _reject(code: str, field_name: Optional[str], problem: str, label: Optional[str] = None):
    """Raise the verdict; the message starts with `label` (default: the field)."""
    label = label or field_name
    raise InvalidJob(code, f"{label}: {problem}" if label else problem, field_name)


def _is_int(x) -> bool:
    """A msgpack int that fits in a signed 64-bit integer (bool is no int)."""
    return isinstance(x, int) and not isinstance(x, bool) and _INT64_MIN <= x <= _INT64_MAX


def _is_number(x) -> bool:
    """A finite float, or an integer msgpack can carry."""
    if isinstance(x, float):
        return math.isfinite(x)
    return isinstance(x, int) and not isinstance(x, bool) and _INT64_MIN <= x <= _UINT64_MAX


def _text_ok(s: str) -> bool:
    """UTF-8 without NUL: no NUL and no surrogates (bad bytes decode to surrogates)."""
    if "\x00" in s:
        return False
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text_problem(x, non_empty: bool) -> Optional[str]:
    if not isinstance(x, str) or (non_empty and not x):
        return "must be a non-empty string" if non_empty else "must be a string"
    if not _text_ok(x):
        return "must be valid UTF-8 without NUL bytes"
    return None


def _too_deep(value) -> bool:
    """Whether containers nest more than NESTING_MAX deep (the outer map is 1)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            children = [*v.keys(), *v.values()]
        elif isinstance(v, (list, tuple)):
            children = v
        else:
            continue
        if depth > NESTING_MAX:
            return True
        stack.extend((c, depth + 1) for c in children)
    return False


def _json_problem(value) -> Optional[str]:
    """Why a json_schema value has no JSON meaning, or None when it has one."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if _is_int(value) else "integer out of the signed 64-bit range"
    if isinstance(value, float):
        return None if math.isfinite(value) else "NaN and infinity have no JSON meaning"
    if isinstance(value, str):
        return None if _text_ok(value) else "strings must be valid UTF-8 without NUL bytes"
    if isinstance(value, (list, tuple)):
        return next((p for p in map(_json_problem, value) if p), None)
    if isinstance(value, dict):
        if getattr(value, "repeated", None):
            return "a map key is given more than once"
        for k, v in value.items():
            if not isinstance(k, str) or not _text_ok(k):
                return "map keys must be UTF-8 strings"
            problem = _json_problem(v)
            if problem:
                return problem
        return None
    return "bin and ext values have no JSON meaning"


class _Fields:
    """The job map's known fields, read in table order."""

    def __init__(self, m):
        self.m = m
        self.repeated = getattr(m, "repeated", ())

    def get(self, name):
        """The field's value, or _MISSING; a field given twice is invalid_field."""
        if name in self.repeated:
            _reject("invalid_field", name, "given more than once")
        return self.m.get(name, _MISSING)


def _check_int(fs: _Fields, name: str, minimum: Optional[int]):
    x = fs.get(name)
    if x is _MISSING or (_is_int(x) and (minimum is None or x >= minimum)):
        return
    _reject("invalid_field", name, "must be a signed 64-bit integer" if minimum is None
            else f"must be an integer >= {minimum}")


def _check_number(fs: _Fields, name: str, maximum: Optional[int]):
    x = fs.get(name)
    if x is _MISSING or (_is_number(x) and x >= 0 and (maximum is None or x <= maximum)):
        return
    _reject("invalid_field", name, "must be a number >= 0" if maximum is None
            else f"must be a number between 0 and {maximum}")


def _check_range(fs: _Fields, name: str, maximum: int):
    x = fs.get(name)
    if x is not _MISSING and not (_is_int(x) and 0 <= x <= maximum):
        _reject("invalid_field", name, f"must be an integer between 0 and {maximum}")


def _array(fs: _Fields, name: str, maximum: int, what: str):
    """The array field `name` (None when absent) of at most `maximum` `what`."""
    x = fs.get(name)
    if x is _MISSING:
        return None
    if not isinstance(x, (list, tuple)):
        _reject("invalid_field", name, f"must be an array of {what}")
    if len(x) > maximum:
        _reject("invalid_field", name, f"at most {maximum} {what} (got {len(x)})")
    return x


def _check_lora(fs: _Fields):
    names = set()
    for i, entry in enumerate(_array(fs, "lora", LORA_MAX, "{name, scale} maps") or ()):
        where = f"lora[{i}]"
        if not isinstance(entry, dict):
            _reject("invalid_field", "lora", "must be a map", where)
        if set(getattr(entry, "repeated", ())) & {"name", "scale"}:
            _reject("invalid_field", "lora", "a key given more than once", where)
        problem = _text_problem(entry["name"], True) if "name" in entry else "missing"
        if problem:
            _reject("invalid_field", "lora", problem, where + ".name")
        if "scale" in entry and not _is_number(entry["scale"]):
            _reject("invalid_field", "lora", "must be a number", where + ".scale")
        if entry["name"] in names:
            _reject("invalid_field", "lora", f"adapter {entry['name']!r} given twice", where)
        names.add(entry["name"])


def _check_text(fs: _Fields, name: str, non_empty: bool):
    x = fs.get(name)
    problem = None if x is _MISSING else _text_problem(x, non_empty)
    if problem:
        _reject("invalid_field", name, problem)


def _check_message(i: int, msg):
    if not isinstance(msg, dict):
        _reject("invalid_input", "messages", "must be a map", f"messages[{i}]")
    for key, non_empty in (("role", True), ("content", False)):
        where = f"messages[{i}].{key}"
        if key in getattr(msg, "repeated", ()):
            _reject("invalid_input", "messages", "given more than once", where)
        if key not in msg:
            _reject("invalid_input", "messages", "missing", where)
        problem = _text_problem(msg[key], non_empty)
        if problem:
            _reject("invalid_input", "messages", problem, where)


def _check_input(fs: _Fields):
    prompt, messages = fs.get("prompt"), fs.get("messages")
    if prompt is not _MISSING and messages is not _MISSING:
        _reject("invalid_input", "prompt", "give one, not both", "prompt, messages")
    if prompt is not _MISSING:
        problem = _text_problem(prompt, False)
        if problem:
            _reject("invalid_input", "prompt", problem)
    elif messages is not _MISSING:
        if not isinstance(messages, (list, tuple)) or not messages:
            _reject("invalid_input", "messages", "must be a non-empty array of maps")
        for i, msg in enumerate(messages):
            _check_message(i, msg)
    else:
        _reject("invalid_input", "prompt", "one of them is required", "prompt, messages")


def _check_stop(fs: _Fields):
    for i, s in enumerate(_array(fs, "stop", STOP_MAX, "strings") or ()):
        problem = _text_problem(s, True)
        if problem:
            _reject("invalid_field", "stop", problem, f"stop[{i}]")


def validate_job(job: Union[Job, Dict[str, Any]]) -> None:
    """Raise InvalidJob when a v1 worker would reject `job` while decoding it.

    The checks and their order are the worker's (schemas/spec.md, the field
    table): the message is a map with string keys nested at most 32 deep, v
    is the integer 1, id is 1..128 UTF-8 bytes, exactly one of prompt /
    messages, then each optional field's type and range. None is not a
    value: leave an optional field out instead (a Job does that for you)."""
    m = job.to_dict() if isinstance(job, Job) else job
    if not isinstance(m, dict):
        _reject("malformed", None, "a job must be a msgpack map")
    if getattr(m, "odd_keys", False) or not all(isinstance(k, str) for k in m):
        _reject("malformed", None, "job map keys must be strings")
    if _too_deep(m):
        _reject("malformed", None, f"containers nested over {NESTING_MAX} deep")
    fs = _Fields(m)

    v = fs.get("v")
    if v is _MISSING:
        _reject("unsupported_version", "v", f"missing; this client speaks v {VERSION}")
    if not _is_int(v) or v != VERSION:
        _reject("unsupported_version", "v", f"must be the integer {VERSION}")

    job_id = fs.get("id")
    if job_id is _MISSING:
        _reject("invalid_id", "id", "missing")
    problem = _text_problem(job_id, True)
    if problem:
        _reject("invalid_id", "id", problem)
    if len(job_id.encode("utf-8")) > ID_MAX_BYTES:
        _reject("invalid_id", "id", f"must be at most {ID_MAX_BYTES} bytes "
                f"(got {len(job_id.encode('utf-8'))})")

    _check_input(fs)
    _check_int(fs, "max_tokens", 1)
    _check_number(fs, "temperature", None)
    _check_number(fs, "top_p", 1)
    _check_int(fs, "top_k", 0)
    _check_number(fs, "min_p", 1)
    _check_int(fs, "seed", None)
    _check_number(fs, "repeat_penalty", None)
    _check_stop(fs)
    _check_text(fs, "grammar", False)
    schema = fs.get("json_schema")
    if schema is not _MISSING:
        if not isinstance(schema, dict):
            _reject("invalid_field", "json_schema", "must be a map")
        problem = _json_problem(schema)
        if problem:
            _reject("invalid_field", "json_schema", problem)
        if "grammar" in m:
            _reject("invalid_input", "grammar", "give one, not both", "grammar, json_schema")
    stream = fs.get("stream")
    if stream is not _MISSING and not isinstance(stream, bool):
        _reject("invalid_field", "stream", "must be a boolean")
    reply_to = fs.get("reply_to")
    if reply_to is not _MISSING and not (isinstance(reply_to, str) and
                                         _TOPIC_RE.fullmatch(reply_to) and
                                         reply_to not in (".", "..")):
        _reject("invalid_field", "reply_to",
                f"must be a Kafka topic name (1..{TOPIC_MAX} of [a-zA-Z0-9._-])")
    _check_int(fs, "deadline_ms", None)
    _check_text(fs, "model", True)
    meta = fs.get("meta")
    if meta is not _MISSING and not isinstance(meta, dict):
        _reject("invalid_field", "meta", "must be a map")
    _check_range(fs, "logprobs", LOGPROBS_MAX)
    _check_lora(fs)
    _check_range(fs, "chunk_ms", CHUNK_MS_MAX)


# The replies live in llmq.replies (which needs the helpers above); they are
# part of this module's interface too.
from .replies import (Chunk, Counters, Done, Error, Gpu, Heartbeat, Reply,  # noqa: E402,F401
                      Timings, Token, TokenLogprob, Usage, decode_reply)
