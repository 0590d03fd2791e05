"""test_bad_input.py — bad input never stops the worker (real broker, real
llama-server with the tiny model): every kind of bad job ends with an error
reply carrying its stable code where an id and a permitted reply topic are
known, a raw copy on the dead-letter topic with the five llmq-* headers (not
for `expired`), and its offset done — the good jobs behind it in the same
partition complete and the group's committed offset passes them all."""
import time
import uuid

import msgpack

from fault_tools import (ReplyTracker, Submitter, group_of, pool, read_topic,  # noqa: F401
                         wait_committed)

# A 256-token context per slot and a 1 KiB prompt limit, so both the worker's
# limit and llama-server's context can be hit with small jobs.
BAD_INPUT_CFG = {
    "limits.max_prompt_bytes": "1024",
    "llama.model_name": '"tiny"',
    "llama.context": "512",
    "llama.slots": "2",
}


def jid(name):
    return f"{name}-{uuid.uuid4().hex[:8]}"


def job_of(message):
    """The job map inside a case's message ({} when there is none)."""
    if isinstance(message, dict):
        return message
    try:
        job = msgpack.unpackb(message[0], raw=False)
    except ValueError:
        return {}
    return job if isinstance(job, dict) else {}


def bad_cases(now_ms, evil_topic):
    """(name, message, expected code, whether an error reply can be addressed).
    A message is a job map, or (raw bytes, key) for what is not one."""
    return [
        ("undecodable", (b"\xc1\x93\x01", b"k-undecodable"), "malformed", False),
        ("not-a-map", (msgpack.packb([1, "prompt", 3]), b"k-array"), "malformed", False),
        ("trailing-bytes", (msgpack.packb({"v": 1, "id": "x", "prompt": "p"}) + b"\x00",
                            b"k-trailing"), "malformed", False),
        ("missing-id", {"v": 1, "prompt": "no id here"}, "invalid_id", False),
        ("oversized-id", {"v": 1, "id": "x" * 129, "prompt": "p"}, "invalid_id", False),
        ("bad-version", {"v": 2, "id": jid("bad-version"), "prompt": "p"},
         "unsupported_version", True),
        ("wrong-type", {"v": 1, "id": jid("wrong-type"), "prompt": "p", "temperature": "hot",
                        "meta": {"trace": "t-1", "n": 7}}, "invalid_field", True),
        ("keyed-apart", (msgpack.packb({"v": 1, "id": "keyed-apart-" + uuid.uuid4().hex[:8],
                                        "prompt": "p", "top_p": 2.0}), b"not-the-id"),
         "invalid_field", True),
        ("max-tokens-float", {"v": 1, "id": jid("max-tokens-float"), "prompt": "p",
                              "max_tokens": 8.0}, "invalid_field", True),
        ("both-inputs", {"v": 1, "id": jid("both"), "prompt": "p",
                         "messages": [{"role": "user", "content": "hi"}]}, "invalid_input", True),
        ("no-input", {"v": 1, "id": jid("neither")}, "invalid_input", True),
        ("oversized-prompt", {"v": 1, "id": jid("big-prompt"), "prompt": "x" * 2000,
                              "meta": {"why": "too big"}}, "prompt_too_large", True),
        # A denied reply_to is never written to, and no other topic is known for it.
        ("reply-to-denied", {"v": 1, "id": jid("denied"), "prompt": "p",
                             "reply_to": evil_topic}, "reply_to_denied", False),
        # A reply_to present but unusable: no error reply anywhere (spec.md).
        ("reply-to-int", {"v": 1, "id": jid("reply-int"), "prompt": "p", "reply_to": 7},
         "invalid_field", False),
        ("reply-to-twice", (b"\x85\xa1v\x01\xa2id\xb2reply-twice-" + uuid.uuid4().hex[:6].encode()
                            + b"\xa6prompt\xa1p\xa8reply_to\xacllmq.replies\xa8reply_to\xacllmq.replies",
                            b"k-twice"), "invalid_field", False),
        # Roles count toward max_prompt_bytes: contents 1020, with roles 1030.
        ("roles-too-large", {"v": 1, "id": jid("roles"), "messages": [
            {"role": "system", "content": "s" * 1000}, {"role": "user", "content": "u" * 20}]},
         "prompt_too_large", True),
        # A long multi-byte model name: message and header cut between characters.
        ("long-utf8-model", {"v": 1, "id": jid("utf8-model"), "prompt": "p",
                             "model": "\u00e9" * 300}, "model_mismatch", True),
        ("expired", {"v": 1, "id": jid("expired"), "prompt": "p", "deadline_ms": now_ms - 60000},
         "expired", True),
        ("model-mismatch", {"v": 1, "id": jid("mismatch"), "prompt": "p", "model": "other"},
         "model_mismatch", True),
        # Under the worker's byte limit, over llama-server's 256-token slot context.
        ("context-exceeded", {"v": 1, "id": jid("context"), "prompt": " a" * 450,
                              "max_tokens": 8}, "context_exceeded", True),
    ]


def test_bad_jobs_end_with_error_reply_dead_letter_and_done_offset(kafka, bootstrap, topics, pool):
    tag = uuid.uuid4().hex[:8]
    evil, allowed = f"evil.{tag}", f"allowed.{tag}"
    kafka.create_topic(evil, 1)
    kafka.create_topic(allowed, 1)
    w = pool.start(topics, bootstrap, **BAD_INPUT_CFG)
    replies = ReplyTracker(bootstrap, topics["replies"])
    cases = bad_cases(int(time.time() * 1000), evil)
    good = [
        {"v": 1, "id": jid("good"), "prompt": "After the bad ones", "max_tokens": 8},
        # The longest id there is: echoed whole, in the replies and their llmq-id header.
        {"v": 1, "id": "L" * 128, "prompt": "Long id", "max_tokens": 8, "model": "tiny"},
        {"v": 1, "id": jid("allowed"), "prompt": "Elsewhere", "max_tokens": 8,
         "reply_to": allowed},
    ]
    # Everything in one partition, bad jobs first: the good ones can only
    # complete, and the committed offset only pass them, if no bad one blocks.
    placed = Submitter(bootstrap).send(topics["jobs"], [c[1] for c in cases] + good, partition=0)
    offsets = [off for _, off in placed]
    last = offsets[-1]

    addressed = [job_of(c[1])["id"] for c in cases if c[3]]
    replies.wait([j["id"] for j in good[:2]] + addressed, timeout=120)
    elsewhere = ReplyTracker(bootstrap, allowed)
    elsewhere.wait([good[2]["id"]], timeout=60)
    wait_committed(bootstrap, group_of(topics), topics["jobs"], {0: last + 1}, timeout=60)
    replies.settle(1.0)

    # Error replies: the stable code, retryable from the code table, no run
    # unless the job ran, meta echoed, headers for routers.
    for name, message, code, has_reply in cases:
        if not has_reply:
            continue
        job = job_of(message)
        err = replies.first_terminal(job["id"])
        assert err["type"] == "error", (name, err)
        assert err["code"] == code, (name, err)
        assert err["retryable"] is (code == "model_mismatch"), (name, err)
        assert err["message"], name
        assert err["worker"], name
        if code == "context_exceeded":
            assert err["run"], "the job ran: its error names the run"
        else:
            assert err["run"] == "", (name, err)
        assert err.get("meta") == job.get("meta"), name
        assert len(replies.terminals(job["id"])) == 1, name
    assert "" not in replies.by_id, "a reply went out for a job whose id could not be read"
    for name, message, code, has_reply in cases:
        if not has_reply and job_of(message).get("id"):
            assert not replies.terminals(job_of(message)["id"]), f"{name} got an error reply"
    # Each reply not sent was given up, counted and logged (issue 16 point 9).
    assert w.log_text().count("gave up reply (no_address)") >= sum(not c[3] for c in cases)
    for msg, reply in replies.messages:
        headers = {k: v.decode() for k, v in msg.headers() or []}
        assert headers["llmq-type"] == reply["type"]
        assert headers["llmq-id"] == reply["id"]
        assert msg.key().decode() == reply["id"]
    assert read_topic(bootstrap, evil, 1, timeout=1.5) == [], "a denied reply_to was written to"

    # The good jobs behind them completed.
    firsts = replies.check_delivery([j["id"] for j in good[:2]])
    assert firsts["L" * 128]["usage"]["completion_tokens"] == 8
    elsewhere.check_delivery([good[2]["id"]])

    # Dead letters: the raw message, its key, and where it came from.
    dead_cases = [(c, off) for c, off in zip(cases, offsets) if c[2] != "expired"]
    dead = read_topic(bootstrap, topics["dead"], len(dead_cases), timeout=30)
    by_offset = {}
    for msg in dead:
        headers = {k: v.decode() for k, v in msg.headers() or []}
        assert set(headers) >= {"llmq-error-code", "llmq-error-message", "llmq-source-topic",
                                "llmq-source-partition", "llmq-source-offset"}, headers
        by_offset[int(headers["llmq-source-offset"])] = (msg, headers)
    assert len(dead) == len(dead_cases), f"{len(dead)} dead letters for {len(dead_cases)} jobs"
    for (name, message, code, _), off in dead_cases:
        msg, headers = by_offset[off]
        if isinstance(message, tuple):
            raw, key = message
        else:
            raw = msgpack.packb(message, use_bin_type=True)
            key = message["id"].encode() if "id" in message else None
        assert msg.value() == raw, name
        assert msg.key() == key, name
        assert headers["llmq-error-code"] == code, (name, headers)
        assert headers["llmq-error-message"], name  # decode() above: valid UTF-8
        if name == "long-utf8-model":
            assert len(headers["llmq-error-message"].encode()) <= 255
            assert headers["llmq-error-message"].endswith("\u00e9"), headers
        assert headers["llmq-source-topic"] == topics["jobs"], name
        assert headers["llmq-source-partition"] == "0", name

    assert w.proc.poll() is None, "the worker stopped"
    w.stop()
    assert w.proc.returncode == 0, w.log_text()[-3000:]
    for tracker in (replies, elsewhere):
        tracker.close()


def test_messages_the_broker_never_takes_do_not_stall_the_partition(kafka, bootstrap, topics,
                                                                    pool):
    # A job the broker took but whose dead-letter copy (the raw message plus
    # headers) is over the producer's message size, and a job whose allowed
    # reply_to topic does not exist: neither message can ever be delivered,
    # and neither may hold the partition's committed offset back forever.
    w = pool.start(topics, bootstrap, **BAD_INPUT_CFG,
                   **{"kafka.properties": "{ topic_metadata_propagation_max_ms = 2000; }"})
    replies = ReplyTracker(bootstrap, topics["replies"])
    big = {"v": 1, "id": jid("huge"), "prompt": "x" * 1_000_100}
    nowhere = {"v": 1, "id": jid("nowhere"), "prompt": "Lost", "max_tokens": 8,
               "reply_to": f"allowed.missing-{uuid.uuid4().hex[:8]}"}
    after = {"v": 1, "id": jid("after"), "prompt": "Next", "max_tokens": 8}
    placed = Submitter(bootstrap).send(topics["jobs"], [big, nowhere, after], partition=0)
    replies.wait([big["id"], after["id"]], timeout=90)
    assert replies.first_terminal(big["id"])["code"] == "prompt_too_large"
    replies.check_delivery([after["id"]])
    wait_committed(bootstrap, group_of(topics), topics["jobs"], {0: placed[-1][1] + 1},
                   timeout=60)
    log = w.log_text()
    assert f"job {big['id']}: the broker will never take its message to {topics['dead']}" in log
    assert f"job {nowhere['id']}: the broker will never take its message to allowed.missing-" in log
    assert w.proc.poll() is None
    w.stop()
    assert w.proc.returncode == 0
    replies.close()


def test_a_done_reply_too_large_for_the_broker_becomes_an_error_reply(bootstrap, topics, pool):
    # The job fits the producer's 1,000,000-byte message limit, but its done
    # reply (the meta echoed plus the text) does not: the producer must still
    # learn how its job ended, from a small `internal` error reply.
    w = pool.start(topics, bootstrap, **{"llama.slots": "1", "llama.context": "4096",
                                         "limits.max_tokens": "2000"})
    replies = ReplyTracker(bootstrap, topics["replies"])
    big = {"v": 1, "id": jid("big-done"), "prompt": "Go", "max_tokens": 2000, "stream": False,
           "meta": {"blob": "m" * 995_000}}
    after = {"v": 1, "id": jid("after-big"), "prompt": "Next", "max_tokens": 8}
    placed = Submitter(bootstrap).send(topics["jobs"], [big, after], partition=0)
    replies.wait([big["id"], after["id"]], timeout=120)
    term = replies.first_terminal(big["id"])
    assert term["type"] == "error" and term["code"] == "internal", term
    assert "larger than the broker accepts" in term["message"]
    assert "meta" not in term
    replies.check_delivery([after["id"]])
    wait_committed(bootstrap, group_of(topics), topics["jobs"], {0: placed[-1][1] + 1},
                   timeout=60)
    assert f"job {big['id']}: the done reply" in w.log_text()
    w.stop()
    replies.close()
