"""llmq.control — messages of the control topic (wire contract v1,
schemas/spec.md "Cancellation"): a `cancel` asks every worker to stop a job.

encode_cancel() checks a cancel and returns its msgpack bytes (fields in the
order v, type, id, run, reason); decode_cancel() reads one back and raises
InvalidCancel for what a worker would ignore. The Kafka key of a cancel is
the job id, its headers llmq-type=cancel and llmq-id=<id> (Client.cancel()
sends it that way).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import msgpack

from .codec import _MISSING, ID_MAX_BYTES, VERSION, _is_int, _text_problem, _unpack
from .errors import InvalidCancel

CONTROL_TOPIC = "llmq.control"


@dataclass(frozen=True)
class Cancel:
    """Cancel job `id`: every run of it (run None), or only `run` while it
    runs. `reason` is for people; the worker quotes it in the error reply."""

    id: str
    run: Optional[str] = None
    reason: Optional[str] = None

    def to_dict(self):
        d = {"v": VERSION, "type": "cancel", "id": self.id}
        d.update((k, v) for k, v in (("run", self.run), ("reason", self.reason)) if v is not None)
        return d


def _check(m) -> Cancel:
    """The Cancel a control map means, or InvalidCancel naming the field."""
    if not isinstance(m, dict) or getattr(m, "odd_keys", False):
        raise InvalidCancel("a control message must be a map with string keys")
    repeated = sorted(getattr(m, "repeated", ()), key=str)
    if repeated:
        raise InvalidCancel(f"{repeated[0]}: given more than once")
    v, kind = m.get("v", _MISSING), m.get("type", _MISSING)
    if not _is_int(v) or v != VERSION:
        raise InvalidCancel(f"v: must be the integer {VERSION}")
    if kind != "cancel":
        raise InvalidCancel(f"type: not a v1 control message type: {kind!r}"
                            if kind is not _MISSING else "type: missing")
    job_id = m.get("id", _MISSING)
    problem = "missing" if job_id is _MISSING else _text_problem(job_id, True)
    if not problem and len(job_id.encode("utf-8")) > ID_MAX_BYTES:
        problem = f"must be at most {ID_MAX_BYTES} bytes"
    if problem:
        raise InvalidCancel(f"id: {problem}")
    for name, non_empty in (("run", True), ("reason", False)):
        x = m.get(name, _MISSING)
        problem = None if x is _MISSING else _text_problem(x, non_empty)
        if problem:
            raise InvalidCancel(f"{name}: {problem}")
    return Cancel(job_id, m.get("run"), m.get("reason"))


def encode_cancel(cancel: Cancel) -> bytes:
    """The msgpack bytes of a cancel; InvalidCancel when a worker would ignore it."""
    d = cancel.to_dict()
    _check(d)
    return msgpack.packb(d, use_bin_type=True)


def decode_cancel(data: bytes) -> Cancel:
    """Read a control message; InvalidCancel unless it is a v1 cancel.
    Unknown fields are ignored."""
    try:
        m = _unpack(data)
    except (ValueError, TypeError):
        raise InvalidCancel("not one complete msgpack value") from None
    return _check(m)
