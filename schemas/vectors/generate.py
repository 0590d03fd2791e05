#!/usr/bin/env python3
"""Write the test vectors of llmq wire contract v1 into this directory.

For each vector NAME: NAME.msgpack (the message bytes) and, when the message
has a JSON meaning, NAME.json beside it; index.json lists them all with the
verdict a worker must reach (see schemas/spec.md, "Test vectors"): in
`vectors` those every implementation judges, in `additions` those of the
features added to v1 later (each names the features it `requires`).

The output is deterministic: running this again gives identical bytes.
When the `jsonschema` package is installed, every JSON meaning is also checked
against schemas/json/KIND.schema.json (the result is recorded as schema_valid).

Needs the `msgpack` package (pip install msgpack).
"""
import json
import os
import struct
import sys

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMAS = os.path.join(HERE, "..", "json")

# The worker policy every job vector is judged under (decode, then admit).
POLICY = {
    "max_prompt_bytes": 1024,
    "reply_topics": ["llmq.replies", "team.*"],
    "default_reply_topic": "llmq.replies",
    "model": "tiny",
    "now_ms": 1700000000000,
    "lora": ["tiny-lora", "style"],
}
NOW = POLICY["now_ms"]

# Which codes a producer may retry (worker/wire/codes.c).
RETRYABLE = {"model_mismatch", "backend_error", "backend_failed", "internal"}

# The parts of v1 added after its first release; additions[] name the ones they need.
FEATURES = {
    "cancel": "the control topic's cancel message and the error code cancelled",
    "partial_text": "partial_text in expired and cancelled errors of a job that was generating",
    "logprobs": "the job field logprobs and the logprobs of chunk and done replies",
    "lora": "the job field lora, and its adapter names checked at admission",
    "chunk_ms": "the job field chunk_ms",
    "prompt_bytes_roles": "message roles count toward max_prompt_bytes",
    "reply_routing": "a job whose reply_to is present but unusable gets no error reply",
    "utf8_cut": "error messages and header values shortened between UTF-8 characters",
}


class Raw:
    """Bytes that go into a hand-built message as they are (already msgpack)."""

    def __init__(self, data):
        self.data = data


def pack(value):
    if isinstance(value, Raw):
        return value.data
    return msgpack.packb(value, use_bin_type=True)


def pack_pairs(pairs):
    """A msgpack map from (key, value) pairs, allowing what a dict cannot:
    repeated keys, non-string keys, pre-encoded (Raw) parts."""
    out = msgpack.Packer().pack_map_header(len(pairs))
    for key, value in pairs:
        out += pack(key) + pack(value)
    return out


def raw_str(data):
    """A msgpack str holding arbitrary bytes (e.g. invalid UTF-8)."""
    assert len(data) < 32
    return Raw(bytes([0xA0 | len(data)]) + data)


VECTORS = []
ADDITIONS = []
NO_REPLY = object()  # reply_topic: the job's error reply goes nowhere

# Invalid jobs whose JSON meaning a JSON Schema cannot tell from a valid one:
# integers that are floats with a zero fraction, nesting depth, byte lengths.
SCHEMA_BLIND = {"job_bad_v_float", "job_bad_top_k_float", "job_bad_too_deep",
                "job_bad_id_long_utf8", "job_bad_logprobs_float", "job_bad_lora_name_twice"}


def add(name, kind, value=None, *, raw=None, valid, code=None, stage=None, field=None,
        description, requires=None, reply_topic=None):
    """Record one vector. `value` is the JSON meaning (None: there is none);
    `raw` the bytes when they are not simply msgpack.packb(value). With
    `requires` (feature names) it is an addition; `reply_topic` (a topic or
    NO_REPLY) says where a rejected job's error reply goes."""
    entry = {"name": name, "kind": kind, "valid": valid}
    if not valid and kind == "job":
        entry["expected_code"] = code
        entry["stage"] = stage
        if field:
            entry["field"] = field
    if reply_topic is not None:
        entry["reply_topic"] = None if reply_topic is NO_REPLY else reply_topic
    entry["file"] = name + ".msgpack"
    if value is not None:
        entry["json"] = name + ".json"
    entry["description"] = description
    if requires:
        assert all(f in FEATURES for f in requires), requires
        entry["requires"] = list(requires)
    data = raw if raw is not None else pack(value)
    (ADDITIONS if requires else VECTORS).append((entry, data, value))


def job(name, **fields):
    """A valid prompt job for vector `name`, with fields added or replaced
    (a value of None removes the field)."""
    base = {"v": 1, "id": "vec-" + name, "prompt": "Once upon a time"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def bad_job(name, code, description, field=None, stage="decode", value=None, raw=None,
            requires=None, reply_topic=None, **fields):
    if value is None and raw is None:
        value = job(name, **fields)
    add(name, "job", value, raw=raw, valid=False, code=code, stage=stage, field=field,
        description=description, requires=requires, reply_topic=reply_topic)


def good_job(name, description, value=None, raw=None, requires=None, **fields):
    if value is None and raw is None:
        value = job(name, **fields)
    add(name, "job", value, raw=raw, valid=True, description=description, requires=requires)


# ---- jobs: valid -----------------------------------------------------------

good_job("job_ok_prompt", "The smallest prompt job: v, id, prompt.")
good_job("job_ok_chat", "A chat job.", prompt=None, messages=[
    {"role": "system", "content": "You answer in one word."},
    {"role": "user", "content": "Capital of France?"},
])
good_job("job_ok_all_fields", "Every v1 field, each valid.",
         max_tokens=64, temperature=0.7, top_p=0.9, top_k=40, min_p=0.05, seed=42,
         repeat_penalty=1.1, stop=["\n\n", "THE END"], grammar='root ::= [a-z ]+',
         stream=False, reply_to="team.alpha", deadline_ms=NOW + 60000, model="tiny",
         meta={"trace": "abc-123", "attempt": 1, "tags": ["x", "y"]})
good_job("job_ok_json_schema", "Structured output through json_schema (a map).",
         prompt=None, messages=[{"role": "user", "content": "A person, as JSON."}],
         json_schema={"type": "object",
                      "properties": {"name": {"type": "string"},
                                     "age": {"type": "integer", "minimum": 0}},
                      "required": ["name", "age"], "additionalProperties": False})
good_job("job_ok_int_reals", "Number fields accept integers.",
         temperature=1, top_p=1, min_p=0, repeat_penalty=0)
good_job("job_ok_negative_seed", "seed is any signed 64-bit integer.", seed=-1)
good_job("job_ok_float32", "A float32 temperature (0.5) is a number like a float64.",
         value=job("job_ok_float32", temperature=0.5),
         raw=msgpack.packb(job("job_ok_float32", temperature=0.5), use_bin_type=True,
                           use_single_float=True))
good_job("job_ok_unknown_fields", "Unknown fields are ignored (evolution rule).",
         priority=5, x_future={"nested": [1, 2, 3]})
good_job("job_ok_id_128", "id at its limit: 128 bytes.", id="i" * 128)
good_job("job_ok_stop_16", "stop at its limit: 16 strings.", stop=["s%02d" % k for k in range(16)])
good_job("job_ok_empty_stop", "An empty stop list is no stop strings.", stop=[])
good_job("job_ok_utf8", "Non-ASCII text.", prompt="Grüße, 世界 🙂", id="vec-utf8-é")
good_job("job_ok_meta_bin", "meta is opaque: a bin inside it is echoed as it is.",
         value=None,
         raw=pack(job("job_ok_meta_bin", meta={"blob": b"\x00\x01\xfe", "n": 1})))
good_job("job_ok_reply_to_default", "reply_to naming the default reply topic.",
         reply_to="llmq.replies")
good_job("job_ok_reply_to_prefix", "reply_to matching the allowlist prefix team.*.",
         reply_to="team.x_y-Z.9")
good_job("job_ok_prompt_at_limit",
         "A prompt of exactly max_prompt_bytes (1024 UTF-8 bytes, 512 characters).",
         prompt="é" * 512)
good_job("job_ok_model", "model naming the model the worker serves.", model="tiny")
good_job("job_ok_deadline_future", "deadline_ms one millisecond after now.",
         deadline_ms=NOW + 1)
good_job("job_ok_stream_true", "stream given explicitly.", stream=True)

# ---- jobs: malformed ------------------------------------------------------

prompt_job = pack(job("truncated"))
bad_job("job_bad_empty", "malformed", "An empty message.", raw=b"")
bad_job("job_bad_garbage", "malformed", "Bytes that are not msgpack (0xc1 is never used).",
        raw=b"\xc1\x00\xff\x10")
bad_job("job_bad_truncated", "malformed", "A job map cut short by 3 bytes.",
        raw=prompt_job[:-3])
bad_job("job_bad_trailing", "malformed", "A valid job map followed by one more byte.",
        raw=prompt_job + b"\xc0")
bad_job("job_bad_not_map_array", "malformed", "A msgpack array, not a map.",
        value=[1, "vec-not-map", "prompt"])
bad_job("job_bad_not_map_str", "malformed", "A msgpack string, not a map.", value="hello")
bad_job("job_bad_key_not_string", "malformed", "A job map with an integer key.",
        raw=pack_pairs([("v", 1), ("id", "vec-key-int"), ("prompt", "x"), (7, "seven")]))
huge = pack_pairs([("v", 1), ("meta", Raw(b"\xdf\xff\xff\xff\xff"))])
bad_job("job_bad_huge_count", "malformed",
        "meta declares 4294967295 entries in a %d-byte message." % len(huge), raw=huge)
deep = {}
for _ in range(40):
    deep = {"d": deep}
bad_job("job_bad_too_deep", "malformed", "meta nested 41 maps deep (the limit is 32).",
        meta=deep)

# ---- jobs: version, id, input ------------------------------------------------

bad_job("job_bad_v_missing", "unsupported_version", "No v.", field="v", v=None)
bad_job("job_bad_v_2", "unsupported_version", "v is 2.", field="v", v=2)
bad_job("job_bad_v_string", "unsupported_version", "v is the string \"1\".", field="v", v="1")
bad_job("job_bad_v_float", "unsupported_version", "v is the float 1.0.", field="v", v=1.0)
bad_job("job_bad_id_missing", "invalid_id", "No id.", field="id", id=None)
bad_job("job_bad_id_empty", "invalid_id", "id is empty.", field="id", id="")
bad_job("job_bad_id_long", "invalid_id", "id is 129 bytes.", field="id", id="i" * 129)
bad_job("job_bad_id_long_utf8", "invalid_id",
        "id is 65 characters but 130 bytes (the limit counts bytes).", field="id", id="é" * 65)
bad_job("job_bad_id_int", "invalid_id", "id is an integer.", field="id", id=12345)
bad_job("job_bad_id_nul", "invalid_id", "id contains a NUL byte.", field="id", id="a\x00b")
bad_job("job_bad_neither", "invalid_input", "Neither prompt nor messages.", field="prompt",
        prompt=None)
bad_job("job_bad_both", "invalid_input", "Both prompt and messages.", field="prompt",
        messages=[{"role": "user", "content": "hi"}])
bad_job("job_bad_prompt_int", "invalid_input", "prompt is an integer.", field="prompt",
        prompt=42)
bad_job("job_bad_prompt_bin", "invalid_input", "prompt is bin, not str.", field="prompt",
        value=None, raw=pack(job("job_bad_prompt_bin", prompt=b"hello")))
bad_job("job_bad_prompt_utf8", "invalid_input", "prompt is a str holding invalid UTF-8.",
        field="prompt",
        raw=pack_pairs([("v", 1), ("id", "vec-prompt-utf8"), ("prompt", raw_str(b"ok\xff\xfe"))]))
bad_job("job_bad_messages_empty", "invalid_input", "messages is empty.", field="messages",
        prompt=None, messages=[])
bad_job("job_bad_messages_not_array", "invalid_input", "messages is a string.",
        field="messages", prompt=None, messages="hi")
bad_job("job_bad_message_not_map", "invalid_input", "A message is a string.",
        field="messages", prompt=None, messages=["hi"])
bad_job("job_bad_message_no_content", "invalid_input", "A message without content.",
        field="messages", prompt=None, messages=[{"role": "user"}])
bad_job("job_bad_message_content_int", "invalid_input", "A message content is an integer.",
        field="messages", prompt=None,
        messages=[{"role": "user", "content": "a"}, {"role": "user", "content": 7}])
bad_job("job_bad_message_role_empty", "invalid_input", "A message role is empty.",
        field="messages", prompt=None, messages=[{"role": "", "content": "hi"}])

# ---- jobs: fields -----------------------------------------------------------

for name, field, value, why in [
    ("max_tokens_zero", "max_tokens", 0, "max_tokens is 0"),
    ("max_tokens_float", "max_tokens", 1.5, "max_tokens is 1.5"),
    ("max_tokens_string", "max_tokens", "64", "max_tokens is a string"),
    ("temperature_negative", "temperature", -0.1, "temperature is -0.1"),
    ("temperature_string", "temperature", "hot", "temperature is a string"),
    ("top_p_above_one", "top_p", 1.5, "top_p is 1.5"),
    ("top_k_negative", "top_k", -1, "top_k is -1"),
    ("top_k_float", "top_k", 4.0, "top_k is the float 4.0"),
    ("min_p_negative", "min_p", -0.5, "min_p is -0.5"),
    ("seed_float", "seed", 0.5, "seed is 0.5"),
    ("repeat_penalty_negative", "repeat_penalty", -1, "repeat_penalty is -1"),
    ("repeat_penalty_bool", "repeat_penalty", True, "repeat_penalty is a boolean"),
    ("stop_not_array", "stop", "END", "stop is a string"),
    ("stop_too_many", "stop", ["s%02d" % k for k in range(17)], "stop has 17 strings"),
    ("stop_entry_int", "stop", ["END", 3], "a stop entry is an integer"),
    ("stop_entry_empty", "stop", [""], "a stop entry is empty"),
    ("grammar_int", "grammar", 1, "grammar is an integer"),
    ("json_schema_string", "json_schema", '{"type":"object"}', "json_schema is a string"),
    ("stream_int", "stream", 1, "stream is the integer 1"),
    ("reply_to_empty", "reply_to", "", "reply_to is empty"),
    ("reply_to_slash", "reply_to", "team/alpha", "reply_to has a character Kafka refuses"),
    ("reply_to_dot", "reply_to", ".", "reply_to is \".\""),
    ("reply_to_long", "reply_to", "team." + "r" * 245, "reply_to is 250 bytes"),
    ("reply_to_int", "reply_to", 9, "reply_to is an integer"),
    ("deadline_float", "deadline_ms", 1700000000000.5, "deadline_ms is a float"),
    ("model_empty", "model", "", "model is empty"),
    ("model_int", "model", 3, "model is an integer"),
    ("meta_array", "meta", ["a"], "meta is an array"),
]:
    bad_job("job_bad_" + name, "invalid_field", why + ".", field=field, **{field: value})

bad_job("job_bad_seed_uint64", "invalid_field", "seed is 2**64-1, beyond the signed 64-bit range.",
        field="seed", value=None, raw=pack(job("job_bad_seed_uint64", seed=2**64 - 1)))
bad_job("job_bad_meta_bin", "invalid_field", "meta is a bin, not a map.", field="meta",
        raw=pack(job("job_bad_meta_bin", meta=b"\x01\x02")))
bad_job("job_bad_json_schema_bin", "invalid_field",
        "json_schema holds a bin value, which has no JSON meaning.", field="json_schema",
        raw=pack(job("job_bad_json_schema_bin", json_schema={"const": b"\x00"})))
bad_job("job_bad_json_schema_int_key", "invalid_field",
        "json_schema has an integer key, which has no JSON meaning.", field="json_schema",
        raw=pack(job("job_bad_json_schema_int_key", json_schema={1: "x"})))
bad_job("job_bad_duplicate_key", "invalid_field", "temperature given twice.",
        field="temperature",
        raw=pack_pairs([("v", 1), ("id", "vec-duplicate"), ("prompt", "x"),
                        ("temperature", 0.5), ("temperature", 0.7)]))
bad_job("job_bad_grammar_and_schema", "invalid_input", "Both grammar and json_schema.",
        field="grammar", grammar="root ::= \"a\"", json_schema={"type": "string"})
bad_job("job_bad_first_rule_wins", "unsupported_version",
        "v is 2 and temperature is negative: the verdict is the first rule in table order.",
        field="v", temperature=-1, v=2)
bad_job("job_bad_first_field_wins", "invalid_field",
        "top_p and temperature are both out of range (top_p first in the map): "
        "the verdict names temperature, first in table order.", field="temperature",
        value={"v": 1, "id": "vec-first-field", "prompt": "x", "top_p": 2, "temperature": -1})

# ---- jobs: admission ---------------------------------------------------------

bad_job("job_deny_reply_to", "reply_to_denied", "reply_to not in the allowlist.",
        stage="admit", field="reply_to", reply_to="other.replies")
bad_job("job_deny_reply_to_prefix", "reply_to_denied",
        "reply_to \"teamx\" does not start with the prefix \"team.\".", stage="admit",
        field="reply_to", reply_to="teamx")
bad_job("job_deny_prompt_too_large", "prompt_too_large",
        "A prompt of 1026 UTF-8 bytes (513 characters) over a limit of 1024.",
        stage="admit", field="prompt", prompt="é" * 513)
bad_job("job_deny_messages_too_large", "prompt_too_large",
        "Message contents adding up to 1100 bytes.", stage="admit", field="messages",
        prompt=None, messages=[{"role": "system", "content": "s" * 600},
                               {"role": "user", "content": "u" * 500}])
bad_job("job_deny_model", "model_mismatch", "model names another model.", stage="admit",
        field="model", model="huge-70b")
bad_job("job_deny_expired", "expired", "deadline_ms equal to now.", stage="admit",
        field="deadline_ms", deadline_ms=NOW)
bad_job("job_deny_order", "reply_to_denied",
        "Denied reply_to and a passed deadline: reply_to is checked first.", stage="admit",
        field="reply_to", reply_to="other.replies", deadline_ms=NOW - 1)

# ---- replies -------------------------------------------------------------------

META = {"trace": "abc-123", "attempt": 1, "tags": ["x", "y"],
        "nested": {"ratio": 1.5, "ok": True, "none": None}}


def chunk(id, run, seq, text):
    return {"v": 1, "type": "chunk", "id": id, "run": run, "seq": seq, "text": text}


def done(id, run, text, finish, usage, timings, worker, meta=None):
    d = {"v": 1, "type": "done", "id": id, "run": run, "text": text, "finish": finish,
         "usage": dict(zip(["prompt_tokens", "completion_tokens"], usage)),
         "timings": dict(zip(["queue_ms", "ttft_ms", "gen_ms", "tokens_per_s"],
                             [float(t) for t in timings])),
         "worker": worker}
    if meta is not None:
        d["meta"] = meta
    return d


def error(id, run, code, message, worker, meta=None):
    e = {"v": 1, "type": "error", "id": id, "run": run, "code": code, "message": message,
         "retryable": code in RETRYABLE, "worker": worker}
    if meta is not None:
        e["meta"] = meta
    return e


def reply(name, value, description, valid=True, raw=None, requires=None):
    add(name, name.split("_")[0], value, raw=raw, valid=valid, description=description,
        requires=requires)


reply("chunk_first", chunk("job-1", "w1-000001", 0, "Hello"), "The first chunk of a run.")
reply("chunk_utf8", chunk("job-1", "w1-000001", 1, " wörld 🙂"), "Non-ASCII text.")
reply("chunk_empty_text", chunk("job-1", "w1-000001", 2, ""), "An empty text.")
reply("chunk_large", chunk("job-2", "w1-000002", 70000, "x" * 300),
      "A seq over 65535 and a text over 255 bytes (wider msgpack forms).")
reply("done_stop_meta",
      done("job-1", "w1-000001", "Hello wörld 🙂", "stop", (12, 3),
           (4.25, 35.5, 12.0, 250.0), "gpu-node-1/0", META),
      "A done reply echoing the job's meta.")
reply("done_length",
      done("job-2", "w1-000002", "x" * 300, "length", (1, 300), (0.0, 2.0, 299.75, 1000.8),
           "gpu-node-1/0"),
      "A done reply for a job without meta: meta is absent.")
reply("error_expired_meta",
      error("job-3", "", "expired", "deadline_ms: passed 12 ms ago", "gpu-node-1/0", META),
      "An error for a job that never ran (empty run), echoing meta.")
reply("error_malformed",
      error("", "", "malformed", "not one complete msgpack value nested at most 32 deep",
            "gpu-node-1/0"),
      "An error whose job id could not be read (empty id).")
reply("error_backend_failed",
      error("job-4", "w1-000007", "backend_failed", "llama-server exited 3 times",
            "gpu-node-2/1", {"k": "v"}),
      "A retryable error after the job ran.")
reply("chunk_bad_no_seq", {k: v for k, v in chunk("job-1", "w1", 0, "a").items() if k != "seq"},
      "A chunk without seq.", valid=False)
reply("chunk_bad_negative_seq", chunk("job-1", "w1", -1, "a"), "A chunk with seq -1.",
      valid=False)
reply("chunk_bad_empty_run", chunk("job-1", "", 0, "a"), "A chunk with an empty run.",
      valid=False)
reply("done_bad_no_usage",
      {k: v for k, v in done("job-1", "w1", "a", "stop", (1, 1), (1, 1, 1, 1), "w").items()
       if k != "usage"}, "A done reply without usage.", valid=False)
reply("done_bad_timing_string",
      dict(done("job-1", "w1", "a", "stop", (1, 1), (1, 1, 1, 1), "w"),
           timings={"queue_ms": "1", "ttft_ms": 1.0, "gen_ms": 1.0, "tokens_per_s": 1.0}),
      "A done reply with a timing as a string.", valid=False)
reply("error_bad_retryable",
      dict(error("job-1", "", "expired", "deadline_ms: passed", "w"), retryable=True),
      "An expired error claiming to be retryable.", valid=False)
reply("error_bad_no_code",
      {k: v for k, v in error("job-1", "", "expired", "m", "w").items() if k != "code"},
      "An error reply without code.", valid=False)

# ---- heartbeats ---------------------------------------------------------------------

GPU_ROCM = {"backend": "rocm", "name": "AMD Instinct MI210", "vram_total_bytes": 68702699520,
            "vram_used_bytes": 9663676416, "temp_edge_c": 41.0, "temp_junction_c": 48.0,
            "temp_mem_c": 52.0, "power_w": 88.5, "busy_percent": 37.0}
GPU_NONE = {"backend": "none", "name": None, "vram_total_bytes": None, "vram_used_bytes": None,
            "temp_edge_c": None, "temp_junction_c": None, "temp_mem_c": None, "power_w": None,
            "busy_percent": None}


def heartbeat(state, gpu, busy, total, counters):
    return {"v": 1, "type": "heartbeat", "worker": "gpu-node-1/0", "host": "gpu-node-1",
            "model": "tiny", "state": state, "ts_ms": NOW, "gpu": gpu, "slots_busy": busy,
            "slots_total": total,
            "counters": dict(zip(["jobs_done", "jobs_failed", "tokens"], counters))}


add("heartbeat_rocm", "heartbeat", heartbeat("ready", GPU_ROCM, 3, 4, (1200, 7, 358000)),
    valid=True, description="A ready worker on an AMD GPU.")
add("heartbeat_none", "heartbeat", heartbeat("starting", GPU_NONE, 0, 4, (0, 0, 0)),
    valid=True, description="A starting worker without a GPU backend: readings are nil.")
add("heartbeat_bad_no_gpu", "heartbeat",
    {k: v for k, v in heartbeat("ready", GPU_NONE, 0, 4, (0, 0, 0)).items() if k != "gpu"},
    valid=False, description="A heartbeat without gpu.")
add("heartbeat_bad_slots", "heartbeat", heartbeat("ready", GPU_NONE, 0, 0, (0, 0, 0)),
    valid=False, description="A heartbeat with slots_total 0.")


# ---- later rules every implementation already meets ---------------------------------

good_job("job_ok_messages_at_limit",
         "Roles and contents adding up to exactly max_prompt_bytes (6 + 500 + 4 + 514).",
         prompt=None, messages=[{"role": "system", "content": "s" * 500},
                                {"role": "user", "content": "u" * 514}])
reply("done_bad_negative_usage",
      dict(done("job-1", "w1", "a", "stop", (1, 1), (1, 1, 1, 1), "w"),
           usage={"prompt_tokens": 5, "completion_tokens": -1}),
      "A done reply with a negative completion_tokens (usage is never negative).", valid=False)

# ---- additions: cancellation -----------------------------------------------------------


def cancel(id, **fields):
    c = {"v": 1, "type": "cancel", "id": id}
    c.update(fields)
    return c


def control(name, value, description, valid=True, raw=None):
    add(name, "cancel", value, raw=raw, valid=valid, description=description,
        requires=["cancel"])


control("cancel_ok", cancel("job-5"), "The smallest cancel: every run of job-5.")
control("cancel_run_reason", cancel("job-5", run="w1-000009", reason="user pressed Ctrl-C"),
        "A cancel of one run, with a reason for people.")
control("cancel_utf8_unknown_field", cancel("vec-utf8-é", reason="zu spät 🙂", future=[1, 2]),
        "Non-ASCII id and reason, and an unknown field (ignored).")
control("cancel_bad_no_id", {"v": 1, "type": "cancel"}, "A cancel without id.", valid=False)
control("cancel_bad_id_long", cancel("i" * 129), "A cancel whose id is 129 bytes.", valid=False)
control("cancel_bad_run_empty", cancel("job-5", run=""), "A cancel with an empty run.",
        valid=False)
control("cancel_bad_reason_int", cancel("job-5", reason=3), "A cancel whose reason is an integer.",
        valid=False)
control("cancel_bad_v_2", cancel("job-5", v=2), "A cancel with v 2.", valid=False)
control("cancel_bad_type", cancel("job-5", type="pause"),
        "A control message of a type v1 does not know (ignored by workers).", valid=False)

reply("error_cancelled_queued",
      error("job-5", "", "cancelled", "cancelled: user pressed Ctrl-C", "gpu-node-1/0", META),
      "A job cancelled before it ran (empty run), with the cancel's reason and the job's meta.",
      requires=["cancel"])
reply("error_cancelled_running",
      dict(error("job-6", "w1-000009", "cancelled", "cancelled", "gpu-node-1/0"),
           partial_text="Once upon a"),
      "A job cancelled while generating: partial_text holds what its run generated.",
      requires=["cancel", "partial_text"])
reply("error_bad_cancelled_retryable",
      dict(error("job-5", "", "cancelled", "cancelled", "w"), retryable=True),
      "A cancelled error claiming to be retryable.", valid=False, requires=["cancel"])

# ---- additions: deadlines (partial_text) -----------------------------------------------

reply("error_expired_partial_text",
      dict(error("job-3", "w1-000003", "expired", "deadline_ms: passed while generating",
                 "gpu-node-1/0"), partial_text="The sea is wide and déep", meta=META),
      "A job whose deadline passed while generating: expired with the text so far.",
      requires=["partial_text"])
reply("error_expired_partial_empty",
      dict(error("job-3", "w1-000004", "expired", "deadline_ms: passed while generating",
                 "gpu-node-1/0"), partial_text=""),
      "Expired during prompt processing: the run generated nothing yet.",
      requires=["partial_text"])
reply("error_bad_partial_text_internal",
      dict(error("job-3", "w1-000004", "internal", "m", "w"), partial_text="x"),
      "partial_text on a code other than expired and cancelled.", valid=False,
      requires=["partial_text"])
reply("error_bad_partial_text_no_run",
      dict(error("job-3", "", "expired", "m", "w"), partial_text="x"),
      "partial_text on a job that never ran (empty run).", valid=False,
      requires=["partial_text"])

# ---- additions: log-probabilities ------------------------------------------------------

F32_LOWEST = -3.4028234663852886e38


def f32(x):
    """x rounded to float32 (the JSON meaning of a logprob as written)."""
    return struct.unpack(">f", struct.pack(">f", x))[0]


def pack_f32(x):
    return b"\xca" + struct.pack(">f", x)


def pack_logprobs(entries):
    """The logprobs array with its logprobs as float32, as the worker writes it."""
    out = msgpack.Packer().pack_array_header(len(entries))
    for token, lp, top in entries:
        out += msgpack.Packer().pack_array_header(3) + pack(token) + pack_f32(lp)
        out += msgpack.Packer().pack_array_header(len(top))
        for alt, alp in top:
            out += msgpack.Packer().pack_array_header(2) + pack(alt) + pack_f32(alp)
    return out


def with_logprobs(message, entries, after="text"):
    """A reply's JSON meaning (or None when a token is bin) and its bytes,
    logprobs placed right after `after`."""
    entries = [[t, f32(lp), [[a, f32(alp)] for a, alp in top]] for t, lp, top in entries]
    pairs = []
    for k, v in message.items():
        pairs.append((k, v))
        if k == after:
            pairs.append(("logprobs", Raw(pack_logprobs(entries))))
    has_bin = any(isinstance(t, bytes) or any(isinstance(a, bytes) for a, _ in top)
                  for t, _, top in entries)
    value = None if has_bin else dict(
        (k, entries if isinstance(v, Raw) else v) for k, v in pairs)
    return value, pack_pairs(pairs)


TOKENS = [["Hello", -0.25, [["Hello", -0.25], ["Hi", -1.75]]],
          [" world", -0.5, [[" world", -0.5], [" there", -1.125]]],
          ["!", -3.0, [[".", -0.0625], ["!", -3.0]]]]

value, data = with_logprobs(chunk("job-7", "w1-000010", 0, "Hello world"), TOKENS[:2])
reply("chunk_logprobs", value, "A chunk of two tokens with their log-probabilities (logprobs 2).",
      raw=data, requires=["logprobs"])
value, data = with_logprobs(chunk("job-7", "w1-000010", 1, "!"), TOKENS[2:])
reply("chunk_logprobs_last", value, "The next chunk of that run: the chunks' logprobs joined "
      "are the done's (done_logprobs).", raw=data, requires=["logprobs"])
value, data = with_logprobs(chunk("job-8", "w1-000011", 0, "🙂"),
                            [[b"\xf0\x9f", -0.5, [[b"\xf0\x9f", -0.5]]],
                             [b"\x99\x82", -0.015625, [[b"\x99\x82", -0.015625]]]])
reply("chunk_logprobs_split_char", value,
      "One character split over two tokens: each token is a bin holding its bytes.",
      raw=data, requires=["logprobs"])
value, data = with_logprobs(
    done("job-7", "w1-000010", "Hello world!", "stop", (4, 3), (1.5, 20.0, 30.0, 66.5),
         "gpu-node-1/0", META), TOKENS)
reply("done_logprobs", value, "A done reply with the logprobs of each of its tokens.",
      raw=data, requires=["logprobs"])
value, data = with_logprobs(
    done("job-9", "w1-000012", "a", "length", (1, 1), (0.0, 1.0, 0.0, 0.0), "gpu-node-1/0"),
    [["a", -0.125, [["a", -0.125], ["b", F32_LOWEST]]]])
reply("done_logprobs_zero_probability", value,
      "An alternative of probability 0: the lowest float32 as its logprob.",
      raw=data, requires=["logprobs"])
value, data = with_logprobs(chunk("job-7", "w1", 0, "a"), [["a", 0.5, []]])
reply("chunk_bad_logprob_positive", value, "A logprob above 0.", valid=False, raw=data,
      requires=["logprobs"])
reply("done_bad_logprobs_entry_short",
      dict(done("job-7", "w1", "a", "stop", (1, 1), (1, 1, 1, 1), "w"),
           logprobs=[["a", -0.5]]), "A logprobs entry without its top list.", valid=False,
      requires=["logprobs"])

good_job("job_ok_logprobs", "Five alternatives per token.", logprobs=5, requires=["logprobs"])
good_job("job_ok_logprobs_limits", "logprobs at its limit, 20.", logprobs=20,
         requires=["logprobs"])
good_job("job_ok_logprobs_zero", "logprobs 0: no log-probabilities.", logprobs=0,
         requires=["logprobs"])
for name, value, why in [("21", 21, "logprobs is 21"), ("negative", -1, "logprobs is -1"),
                         ("float", 2.0, "logprobs is the float 2.0"),
                         ("bool", True, "logprobs is a boolean")]:
    bad_job("job_bad_logprobs_" + name, "invalid_field", why + ".", field="logprobs",
            requires=["logprobs"], logprobs=value)

# ---- additions: LoRA --------------------------------------------------------------------

good_job("job_ok_lora", "One adapter at half strength.",
         lora=[{"name": "tiny-lora", "scale": 0.5}], requires=["lora"])
good_job("job_ok_lora_two_default_scale",
         "Two adapters; scale defaults to 1.0; a negative scale and unknown entry keys are fine.",
         lora=[{"name": "style"}, {"name": "tiny-lora", "scale": -0.25, "note": "x"}],
         requires=["lora"])
good_job("job_ok_lora_empty", "An empty lora list: the base model.", lora=[], requires=["lora"])
for name, value, why in [
    ("not_array", {"name": "style"}, "lora is a map, not an array"),
    ("entry_string", ["style"], "a lora entry is a string"),
    ("no_name", [{"scale": 1.0}], "a lora entry without name"),
    ("name_empty", [{"name": ""}], "a lora name is empty"),
    ("scale_string", [{"name": "style", "scale": "1"}], "a lora scale is a string"),
    ("name_twice", [{"name": "style"}, {"name": "style", "scale": 0.5}],
     "the adapter style is named twice"),
    ("too_many", [{"name": "a%02d" % k} for k in range(17)], "lora has 17 entries"),
]:
    bad_job("job_bad_lora_" + name, "invalid_field", why + ".", field="lora", requires=["lora"],
            lora=value)
bad_job("job_deny_lora_unknown", "invalid_field",
        "lora names an adapter the worker did not load.", stage="admit", field="lora",
        requires=["lora"], lora=[{"name": "style"}, {"name": "pirate"}])

# ---- additions: chunk_ms -----------------------------------------------------------------

good_job("job_ok_chunk_ms_zero", "chunk_ms 0: token by token.", chunk_ms=0,
         requires=["chunk_ms"])
good_job("job_ok_chunk_ms", "chunk_ms at its limit, 60000.", chunk_ms=60000,
         requires=["chunk_ms"])
good_job("job_ok_steering", "logprobs, lora and chunk_ms together, after meta in table order.",
         stream=True, meta={"k": "v"}, logprobs=3, lora=[{"name": "style", "scale": 2}],
         chunk_ms=25, requires=["logprobs", "lora", "chunk_ms"])
for name, value, why in [("negative", -1, "chunk_ms is -1"),
                         ("too_large", 60001, "chunk_ms is 60001"),
                         ("float", 20.5, "chunk_ms is 20.5")]:
    bad_job("job_bad_chunk_ms_" + name, "invalid_field", why + ".", field="chunk_ms",
            requires=["chunk_ms"], chunk_ms=value)

# ---- additions: the wire contract, exactly (issue 16) -----------------------------------

bad_job("job_deny_messages_roles_too_large", "prompt_too_large",
        "Contents of 1020 bytes fit, but with their roles (6 + 4) the messages are 1030 bytes.",
        stage="admit", field="messages", requires=["prompt_bytes_roles"], prompt=None,
        messages=[{"role": "system", "content": "s" * 510},
                  {"role": "user", "content": "u" * 510}])
for name, model in [("long_utf8", "x" + "模型" * 100), ("long_emoji", "ab" + "🙂" * 150)]:
    bad_job("job_deny_model_" + name, "model_mismatch",
            "A %d-byte model name of multi-byte characters: the verdict's message (which "
            "quotes it, as the dead-letter header does) must stay valid UTF-8 when shortened."
            % len(model.encode()), stage="admit", field="model", requires=["utf8_cut"],
            model=model)
ROUTING = ["reply_routing"]
bad_job("job_route_default", "invalid_field",
        "A bad field and no reply_to: the error goes to the default reply topic.",
        field="temperature", requires=ROUTING, reply_topic="llmq.replies", temperature=-1)
bad_job("job_route_own", "invalid_field",
        "A bad field and an allowed reply_to: the error goes to the job's reply_to.",
        field="temperature", requires=ROUTING, reply_topic="team.alpha", temperature=-1,
        reply_to="team.alpha")
bad_job("job_route_reply_to_invalid", "invalid_field",
        "reply_to is not a topic name: no error reply (only the dead-letter copy).",
        field="reply_to", requires=ROUTING, reply_topic=NO_REPLY, reply_to="team/alpha")
bad_job("job_route_reply_to_int", "invalid_field",
        "reply_to is an integer: no error reply.", field="reply_to", requires=ROUTING,
        reply_topic=NO_REPLY, reply_to=7)
bad_job("job_route_reply_to_twice", "invalid_field",
        "reply_to given twice (both allowed): no error reply.", field="reply_to",
        requires=ROUTING, reply_topic=NO_REPLY,
        raw=pack_pairs([("v", 1), ("id", "vec-route-twice"), ("prompt", "x"),
                        ("reply_to", "team.a"), ("reply_to", "team.b")]))
bad_job("job_route_reply_to_denied", "reply_to_denied",
        "reply_to not in the allowlist: no error reply.", stage="admit", field="reply_to",
        requires=ROUTING, reply_topic=NO_REPLY, reply_to="other.replies")
bad_job("job_route_no_id", "invalid_id",
        "No id: no error reply, whatever the reply_to.", field="id", requires=ROUTING,
        reply_topic=NO_REPLY, id=None, reply_to="team.alpha")
bad_job("job_route_v_2", "unsupported_version",
        "v 2 with a readable id: the error goes to the default reply topic.", field="v",
        requires=ROUTING, reply_topic="llmq.replies", v=2)


# ---- output ---------------------------------------------------------------------------

def schema_check(entry, value):
    """Validate the JSON meaning against its schema; None without jsonschema."""
    try:
        from jsonschema import Draft202012Validator
    except ImportError:
        return None
    with open(os.path.join(SCHEMAS, entry["kind"] + ".schema.json"), encoding="utf-8") as f:
        schema = json.load(f)
    return Draft202012Validator(schema).is_valid(value)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def write_vector(entry, data, value):
    """Write one vector's files; check its JSON meaning against its schema.
    Returns whether the schema could be checked (jsonschema installed)."""
    write(os.path.join(HERE, entry["file"]), data)
    if value is None:
        return True
    text = json.dumps(value, indent=2, ensure_ascii=False) + "\n"
    write(os.path.join(HERE, entry["json"]), text.encode("utf-8"))
    ok = schema_check(entry, value)
    if ok is None:
        return False
    # A message that passes decoding passes the schema, and most decode
    # failures fail it; the exceptions are listed in spec.md.
    expected = entry["valid"] or entry.get("stage") == "admit"
    if (ok != expected) != (entry["name"] in SCHEMA_BLIND):
        sys.exit("%s: schema says %s, expected %s" % (entry["name"], ok, expected))
    return True


def main():
    for old in os.listdir(HERE):
        if old.endswith((".msgpack", ".json")):
            os.remove(os.path.join(HERE, old))
    names = set()
    lists = {"vectors": [], "additions": []}
    checked = True
    for key, vectors in (("vectors", VECTORS), ("additions", ADDITIONS)):
        for entry, data, value in vectors:
            assert entry["name"] not in names, entry["name"]
            names.add(entry["name"])
            checked = write_vector(entry, data, value) and checked
            lists[key].append(entry)
    doc = {
        "contract": "llmq wire contract v1",
        "generator": "schemas/vectors/generate.py",
        "policy": POLICY,
        "vectors": lists["vectors"],
        "features": FEATURES,
        "additions": lists["additions"],
    }
    write(os.path.join(HERE, "index.json"),
          (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    print("%d vectors and %d additions written%s" % (
        len(lists["vectors"]), len(lists["additions"]), "" if checked else
                                    " (jsonschema not installed: schemas not checked)"))


if __name__ == "__main__":
    main()
