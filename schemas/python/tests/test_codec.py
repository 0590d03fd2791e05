"""test_codec.py — llmq.codec and llmq.control against every vector in
schemas/vectors (index.json's vectors and additions): valid jobs and cancels
encode to the committed bytes, and every file gets index.json's verdict."""
import json
import math
import pathlib

import msgpack
import pytest

import llmq
from llmq.codec import JOB_FIELDS, decode_job, decode_reply, encode_job, validate_job
from llmq.control import Cancel, decode_cancel, encode_cancel
from llmq.errors import InvalidCancel, InvalidJob, InvalidReply

VECTORS = pathlib.Path(__file__).resolve().parents[2] / "vectors"
INDEX = json.loads((VECTORS / "index.json").read_text(encoding="utf-8"))
# The features of index.json's additions this library implements: all of them.
FEATURES = {"cancel", "partial_text", "logprobs", "lora", "chunk_ms", "prompt_bytes_roles",
            "reply_routing", "utf8_cut"}
ADDITIONS = INDEX["additions"]
ALL = INDEX["vectors"] + [v for v in ADDITIONS if set(v["requires"]) <= FEATURES]
JOBS = [v for v in ALL if v["kind"] == "job"]
CANCELS = [v for v in ALL if v["kind"] == "cancel"]
REPLIES = [v for v in ALL if v["kind"] not in ("job", "cancel")]
# Written with use_single_float on purpose; a producer writes float64.
FLOAT32 = {"job_ok_float32"}


def raw(vector):
    return (VECTORS / vector["file"]).read_bytes()


def meaning(vector):
    """The job as a producer would hold it: the JSON meaning, or the
    unpacked bytes when there is none (bin inside meta)."""
    if "json" in vector:
        return json.loads((VECTORS / vector["json"]).read_text(encoding="utf-8"))
    return msgpack.unpackb(raw(vector), raw=False)


def name(vector):
    return vector["name"]


def test_every_vector_is_covered():
    skipped = [v["name"] for v in ADDITIONS if not set(v["requires"]) <= FEATURES]
    assert not skipped, f"additions needing features this library lacks: {skipped}"
    assert set(INDEX["features"]) == FEATURES
    assert len(ALL) == len(JOBS) + len(CANCELS) + len(REPLIES)
    assert {v["kind"] for v in ALL} == {"job", "chunk", "done", "error", "heartbeat", "cancel"}
    assert sum(v["valid"] for v in JOBS) >= 15


@pytest.mark.parametrize("vector", [v for v in JOBS if v["valid"] and v["name"] not in FLOAT32],
                         ids=name)
def test_valid_job_encodes_to_vector_bytes(vector):
    assert encode_job(meaning(vector)) == raw(vector)


@pytest.mark.parametrize("vector", [v for v in JOBS if v["valid"]], ids=name)
def test_valid_job_encodes_in_table_order_whatever_the_dict_order(vector):
    job = meaning(vector)
    known = [k for k in reversed(list(job)) if k in JOB_FIELDS]
    shuffled = {k: job[k] for k in known}
    shuffled.update((k, v) for k, v in job.items() if k not in shuffled)
    assert encode_job(shuffled) == encode_job(job)


def test_float32_job_encodes_as_float64():
    vector = next(v for v in JOBS if v["name"] == "job_ok_float32")
    data = encode_job(meaning(vector))
    assert data != raw(vector)
    assert msgpack.unpackb(data) == msgpack.unpackb(raw(vector))
    assert b"\xcb\x3f\xe0\x00\x00\x00\x00\x00\x00" in data  # 0.5 as float64


@pytest.mark.parametrize("vector", JOBS, ids=name)
def test_decode_job_verdict(vector):
    """Valid jobs and admission-stage rejections decode; decode-stage
    rejections raise the worker's code, naming the worker's field."""
    if vector["valid"] or vector["stage"] == "admit":
        job = decode_job(raw(vector))
        assert job.id
        assert encode_job(job) == encode_job(meaning(vector))
        return
    with pytest.raises(InvalidJob) as e:
        decode_job(raw(vector))
    assert e.value.code == vector["expected_code"], str(e.value)
    if "field" in vector:
        assert e.value.field == vector["field"]
        assert str(e.value).startswith(vector["field"]), str(e.value)


@pytest.mark.parametrize("vector", [v for v in JOBS if "json" in v], ids=name)
def test_validate_job_on_json_meaning(vector):
    """A producer holding the job as Python values gets the same verdict
    before anything is sent."""
    job = meaning(vector)
    if vector["valid"] or vector["stage"] == "admit":
        validate_job(job)
        return
    with pytest.raises(InvalidJob) as e:
        validate_job(job)
    assert e.value.code == vector["expected_code"], str(e.value)
    assert e.value.field == vector.get("field")


@pytest.mark.parametrize("vector", REPLIES, ids=name)
def test_decode_reply_verdict(vector):
    if not vector["valid"]:
        with pytest.raises(InvalidReply):
            decode_reply(raw(vector))
        return
    reply = decode_reply(raw(vector))
    assert reply.type == vector["kind"]
    expected = meaning(vector)
    for name in ("id", "run", "seq", "text", "finish", "worker", "code", "message", "retryable",
                 "meta", "partial_text", "host", "model", "state", "ts_ms", "slots_busy",
                 "slots_total"):
        if hasattr(reply, name):
            assert getattr(reply, name) == expected.get(name), name
    if getattr(reply, "logprobs", None) is not None or "logprobs" in expected:
        assert [[e.token, e.logprob, [list(alt) for alt in e.top]] for e in reply.logprobs] \
            == expected["logprobs"]
    if reply.type == "done":
        assert reply.usage == llmq.Usage(**expected["usage"])
        assert reply.timings == llmq.Timings(**expected["timings"])
    if reply.type == "heartbeat":
        assert reply.gpu == llmq.Gpu(**expected["gpu"])
        assert reply.counters == llmq.Counters(**expected["counters"])


@pytest.mark.parametrize("vector", CANCELS, ids=name)
def test_cancel_verdict(vector):
    """Valid cancels decode and encode back to their bytes (unknown fields
    aside); the others raise InvalidCancel, from bytes and before sending."""
    if not vector["valid"]:
        with pytest.raises(InvalidCancel):
            decode_cancel(raw(vector))
        return
    cancel = decode_cancel(raw(vector))
    expected = meaning(vector)
    assert (cancel.id, cancel.run, cancel.reason) == tuple(expected.get(k)
                                                           for k in ("id", "run", "reason"))
    known = {k: v for k, v in expected.items() if k in ("v", "type", "id", "run", "reason")}
    assert msgpack.unpackb(encode_cancel(cancel)) == known
    if known == expected:
        assert encode_cancel(cancel) == raw(vector)


@pytest.mark.parametrize("cancel", [Cancel(""), Cancel("i" * 129), Cancel("j", run=""),
                                    Cancel("j", reason="a\x00b"), Cancel("j", run="r\ud800")])
def test_encode_cancel_refuses_what_a_worker_ignores(cancel):
    with pytest.raises(InvalidCancel):
        encode_cancel(cancel)


def test_decode_reply_ignores_unknown_fields_and_accepts_int_timings():
    done = msgpack.unpackb(raw(next(v for v in REPLIES if v["name"] == "done_length")))
    done["future_field"] = {"x": [1, 2]}
    done["timings"]["queue_ms"] = 3
    reply = decode_reply(msgpack.packb(done, use_bin_type=True))
    assert reply.timings.queue_ms == 3.0 and isinstance(reply.timings.queue_ms, float)


@pytest.mark.parametrize("data, why", [
    (b"", "empty"),
    (b"\x91\x01", "not a map"),
    (msgpack.packb({"v": 2, "type": "chunk"}), "v"),
    (msgpack.packb({"v": 1, "type": "tick"}), "type"),
    (msgpack.packb({"v": 1.0, "type": "chunk", "id": "a", "run": "r", "seq": 0, "text": ""}),
     "v float"),
    (msgpack.packb({"v": 1, "type": "chunk", "id": "a", "run": "r", "seq": 0.0, "text": ""}),
     "seq float"),
    (msgpack.packb({"v": 1, "type": "chunk", "id": "a", "run": "r", "seq": 0, "text": b"x"},
                   use_bin_type=True), "bin text"),
    (msgpack.packb({"v": 1, "type": "chunk", "id": "a" * 129, "run": "r", "seq": 0,
                    "text": ""}), "long id"),
    (msgpack.packb({"v": 1, "type": "chunk", "id": "a", "run": "r", "seq": 0, "text": ""})
     + b"\x00", "trailing"),
])
def test_decode_reply_rejects(data, why):
    with pytest.raises(InvalidReply):
        decode_reply(data)


def test_error_reply_unknown_code_goes_by_its_retryable():
    e = {"v": 1, "type": "error", "id": "j", "run": "", "code": "gpu_on_fire",
         "message": "m", "retryable": True, "worker": "w"}
    assert decode_reply(msgpack.packb(e)).retryable is True
    e.update(run="r1", partial_text="so far")  # a future code may carry partial_text too
    assert decode_reply(msgpack.packb(e)).partial_text == "so far"


def test_job_failed_carries_partial_text():
    e = {"v": 1, "type": "error", "id": "j", "run": "r1", "code": "cancelled",
         "message": "cancelled: enough", "retryable": False, "worker": "w",
         "partial_text": "Once"}
    failure = llmq.errors.job_failed(decode_reply(msgpack.packb(e)))
    assert isinstance(failure, llmq.JobCancelled)
    assert (failure.partial_text, failure.retryable) == ("Once", False)


def test_job_dataclass_round_trip():
    job = llmq.Job(id="j-1", messages=[{"role": "user", "content": "hi"}], temperature=1.0,
                   stop=["\n"], stream=False, meta={"k": b"\x00"}, chunk_ms=0, logprobs=2,
                   lora=[{"name": "style", "scale": 0.5}], extra={"priority": 3})
    data = encode_job(job)
    assert list(msgpack.unpackb(data)) == ["v", "id", "messages", "temperature", "stop",
                                           "stream", "meta", "logprobs", "lora", "chunk_ms",
                                           "priority"]
    assert decode_job(data) == job


@pytest.mark.parametrize("job, code, field", [
    ({"v": 1, "id": "j", "prompt": "x", "temperature": None}, "invalid_field", "temperature"),
    ({"v": 1, "id": "j", "prompt": "x", "temperature": math.inf}, "invalid_field",
     "temperature"),
    ({"v": 1, "id": "j", "prompt": "x", "seed": 2 ** 63}, "invalid_field", "seed"),
    ({"v": True, "id": "j", "prompt": "x"}, "unsupported_version", "v"),
    ({"v": 1, "id": "j", "prompt": "x\ud800"}, "invalid_input", "prompt"),
    ({"v": 1, "id": "j", "messages": [{"role": "user", "content": "a", "name": 1}],
      "stop": ("a",) * 17}, "invalid_field", "stop"),
    ({"v": 1, "id": "j", "prompt": "x", "json_schema": {"a": {1, 2}}}, "invalid_field",
     "json_schema"),
    ({"v": 1, "id": "j", "prompt": "x", "reply_to": ".."}, "invalid_field", "reply_to"),
    ({"v": 1, "id": "j", "prompt": "x", 3: "y"}, "malformed", None),
    ({"v": 1, "id": "j", "prompt": "x", "logprobs": None}, "invalid_field", "logprobs"),
    ({"v": 1, "id": "j", "prompt": "x", "lora": [{"name": "a", "scale": math.nan}]},
     "invalid_field", "lora"),
    ({"v": 1, "id": "j", "prompt": "x", "lora": ({"name": "a"},) * 2}, "invalid_field", "lora"),
    ({"v": 1, "id": "j", "prompt": "x", "chunk_ms": True}, "invalid_field", "chunk_ms"),
    ("not a map", "malformed", None),
])
def test_validate_job_rejects(job, code, field):
    with pytest.raises(InvalidJob) as e:
        validate_job(job)
    assert (e.value.code, e.value.field) == (code, field), str(e.value)


def test_validate_job_accepts_nesting_at_the_limit():
    meta = {}
    for _ in range(30):  # the job map, meta, and 30 more: 32 deep
        meta = {"d": meta}
    validate_job({"v": 1, "id": "j", "prompt": "x", "meta": meta})
    with pytest.raises(InvalidJob):
        validate_job({"v": 1, "id": "j", "prompt": "x", "meta": {"d": meta}})
