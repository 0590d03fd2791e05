"""test_jobs.py — the job path end to end through the real broker, the real
llama-server (tiny model) and llmq-worker."""
import signal
import time

import msgpack

from llmq_harness import Replies, job


def check_stream(replies, job_id, stream=True):
    """The terminal reply is done; its run's chunks are seq 0..n-1 and concatenate to its text."""
    term = replies.terminal(job_id)
    assert term["type"] == "done", term
    chunks = replies.chunks(job_id, term["run"])
    if stream:
        assert [c["seq"] for c in chunks] == list(range(len(chunks)))
        assert "".join(c["text"] for c in chunks) == term["text"]
    else:
        assert chunks == []
    return term


def test_prompt_job_streams_chunks_then_done(kafka, topics, start_worker):
    w = start_worker()
    replies = Replies(kafka, topics["replies"])
    j = job("Once upon a time", max_tokens=12, seed=7, meta={"trace": "abc", "n": 3})
    kafka.submit(topics["jobs"], j)
    replies.wait_terminal([j["id"]], timeout=60)
    term = check_stream(replies, j["id"])
    assert term["finish"] == "length"
    assert term["usage"]["completion_tokens"] == 12
    assert term["meta"] == {"trace": "abc", "n": 3}
    assert term["worker"]
    assert set(term["timings"]) == {"queue_ms", "ttft_ms", "gen_ms", "tokens_per_s"}
    # Kafka key is the job id; headers name the type and the id.
    for msg, reply, headers in replies.raw:
        assert msg.key().decode() == j["id"]
        assert headers["llmq-type"].decode() == reply["type"]
        assert headers["llmq-id"].decode() == j["id"]
    w.stop()
    assert w.proc.returncode == 0, w.log_text()[-2000:]


def test_chat_job(kafka, topics, start_worker):
    start_worker()
    replies = Replies(kafka, topics["replies"])
    j = job(messages=[{"role": "system", "content": "Be brief."},
                      {"role": "user", "content": "Say hello."}], max_tokens=10)
    kafka.submit(topics["jobs"], j)
    replies.wait_terminal([j["id"]], timeout=60)
    term = check_stream(replies, j["id"])
    assert term["usage"]["completion_tokens"] == 10


def test_stream_false_gets_only_done(kafka, topics, start_worker):
    start_worker()
    replies = Replies(kafka, topics["replies"])
    j = job("Hello", max_tokens=8, stream=False)
    kafka.submit(topics["jobs"], j)
    replies.wait_terminal([j["id"]], timeout=60)
    term = check_stream(replies, j["id"], stream=False)
    assert term["text"]


def test_max_tokens_is_capped_by_config(kafka, topics, start_worker):
    start_worker(**{"limits.max_tokens": "20"})
    replies = Replies(kafka, topics["replies"])
    j = job("Hello", max_tokens=5000, stream=False)
    kafka.submit(topics["jobs"], j)
    term = replies.wait_terminal([j["id"]], timeout=60)[j["id"]]
    assert term["type"] == "done"
    assert term["usage"]["completion_tokens"] == 20
    assert term["finish"] == "length"


def test_stop_string_ends_early(kafka, topics, start_worker):
    start_worker()
    replies = Replies(kafka, topics["replies"])
    # Learn what the model says for this seed, then stop on a piece of it.
    probe = job("The", max_tokens=24, seed=11, temperature=0, stream=False)
    kafka.submit(topics["jobs"], probe)
    text = replies.wait_terminal([probe["id"]], timeout=60)[probe["id"]]["text"]
    words = [w for w in text.split() if len(w) >= 2]
    assert words, f"no word to stop on in {text!r}"
    stop_word = words[len(words) // 2]
    j = job("The", max_tokens=24, seed=11, temperature=0, stop=[stop_word])
    kafka.submit(topics["jobs"], j)
    term = replies.wait_terminal([j["id"]], timeout=60)[j["id"]]
    assert term["finish"] == "stop"
    assert stop_word not in term["text"]
    assert term["usage"]["completion_tokens"] < 24
    check_stream(replies, j["id"])


def test_fifty_concurrent_jobs_over_four_partitions(kafka, topics, start_worker):
    start_worker()
    replies = Replies(kafka, topics["replies"])
    jobs = [job(f"Job number {i}", max_tokens=16, seed=i) for i in range(50)]
    kafka.submit(topics["jobs"], *jobs)
    terms = replies.wait_terminal([j["id"] for j in jobs], timeout=240)
    for j in jobs:
        assert terms[j["id"]]["type"] == "done"
        check_stream(replies, j["id"])


def test_job_waits_while_llama_server_loads(kafka, topics, start_worker, tmp_path):
    # The job is on the topic before the worker starts; the worker must take
    # it only once llama-server is ready, and complete it.
    j = job("Early bird", max_tokens=8)
    kafka.submit(topics["jobs"], j)
    w = start_worker(wait_ready=False)
    replies = Replies(kafka, topics["replies"])
    term = replies.wait_terminal([j["id"]], timeout=120)[j["id"]]
    assert term["type"] == "done"
    log = w.log_text()
    assert log.index("llama-server ready") < log.index("assigned")


def test_worker_waits_for_missing_topics(kafka, topics, start_worker):
    # A reply topic that does not exist yet: the worker must not take jobs
    # (their replies would have nowhere to go), must say why, and must start
    # once the topic appears.
    late = f"{topics['replies']}.late"
    w = start_worker(wait_ready=False, **{"kafka.reply_topic": f'"{late}"'})
    w.wait_log(f"missing topic(s): {late}", timeout=60)
    j = job("Patience", max_tokens=6)
    kafka.submit(topics["jobs"], j)
    time.sleep(2)
    assert "assigned" not in w.log_text()
    kafka.create_topic(late, 2)
    replies = Replies(kafka, late)
    assert replies.wait_terminal([j["id"]], timeout=60)[j["id"]]["type"] == "done"
    assert "every topic exists now" in w.log_text()


def test_coalesced_chunks_carry_several_tokens(kafka, topics, start_worker):
    # chunking.coalesce_ms merges tokens into fewer chunk messages; the first
    # piece still goes out at once, and the chunks still add up to the text.
    start_worker(**{"chunking.coalesce_ms": "50"})
    replies = Replies(kafka, topics["replies"])
    j = job("Merge these", max_tokens=200, seed=3)
    kafka.submit(topics["jobs"], j)
    term = replies.wait_terminal([j["id"]], timeout=60)[j["id"]]
    check_stream(replies, j["id"])
    chunks = replies.chunks(j["id"], term["run"])
    assert 2 <= len(chunks) < term["usage"]["completion_tokens"]


def test_coalesced_chunks_by_count(kafka, topics, start_worker):
    # chunking.coalesce_tokens sends a chunk once that many pieces wait, before
    # coalesce_ms (here far away) is up; the first piece still goes alone.
    start_worker(**{"chunking.coalesce_ms": "60000", "chunking.coalesce_tokens": "4"})
    replies = Replies(kafka, topics["replies"])
    j = job("Count these", max_tokens=41, seed=3)
    kafka.submit(topics["jobs"], j)
    term = replies.wait_terminal([j["id"]], timeout=60)[j["id"]]
    check_stream(replies, j["id"])
    chunks = replies.chunks(j["id"], term["run"])
    tokens = term["usage"]["completion_tokens"]
    assert tokens >= 17, term
    # At most 1 + (tokens - 1) / 4 (each token one streamed piece); fewer when
    # llama-server holds a piece back (an incomplete UTF-8 character). Without
    # the count rule it would be 2: the first piece, then the rest at the end.
    assert 3 <= len(chunks) <= 1 + -(-(tokens - 1) // 4), [c["text"] for c in chunks]


def test_default_chunking_merges_tokens(kafka, topics, start_worker):
    # The defaults (100 ms or 8 pieces) send far fewer chunks than tokens.
    start_worker()
    replies = Replies(kafka, topics["replies"])
    j = job("Default merge", max_tokens=64, seed=5)
    kafka.submit(topics["jobs"], j)
    term = replies.wait_terminal([j["id"]], timeout=60)[j["id"]]
    check_stream(replies, j["id"])
    chunks = replies.chunks(j["id"], term["run"])
    assert 2 <= len(chunks) <= 1 + term["usage"]["completion_tokens"] // 4, len(chunks)
