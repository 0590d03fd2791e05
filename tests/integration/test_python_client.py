"""test_python_client.py — the Python client library (schemas/python, import
llmq) against the real broker and a real llmq-worker with the tiny model:
submit and wait, stream, many jobs at once, a job the worker fails, and a job
the library refuses before sending it."""
import sys
import time

import pytest
from confluent_kafka import TopicPartition

from llmq_harness import ROOT

sys.path.insert(0, str(ROOT / "schemas" / "python"))  # no install step needed

import llmq  # noqa: E402
from llmq.errors import InvalidJob, JobExpired, LlmqError  # noqa: E402


@pytest.fixture
def client(bootstrap, topics):
    with llmq.Client(bootstrap, jobs_topic=topics["jobs"], reply_topic=topics["replies"]) as c:
        yield c


def test_submit_and_wait_for_the_result(client, start_worker):
    start_worker()
    future = client.submit("Once upon a time", max_tokens=12, seed=3, meta={"trace": "t-1"})
    done = future.result(timeout=60)
    assert isinstance(done, llmq.Done) and done.id == future.id
    assert done.text and done.finish == "length"
    assert done.usage.completion_tokens == 12
    assert done.meta == {"trace": "t-1"}
    assert done.run and done.worker
    assert done.timings.tokens_per_s > 0


def test_stream_text_equals_the_done_text(client, start_worker):
    start_worker()
    stream = client.stream(messages=[{"role": "user", "content": "Tell a story."}],
                           max_tokens=24, timeout=60)
    pieces = list(stream)
    assert not any(isinstance(p, llmq.StreamRestarted) for p in pieces)
    assert len(pieces) > 1, "expected the text in several chunks"
    assert "".join(pieces) == stream.done.text
    assert stream.done.usage.completion_tokens == 24


def test_submit_many_and_collect(client, start_worker):
    start_worker()
    futures = client.submit_many([{"prompt": f"Job number {i}", "max_tokens": 6,
                                   "meta": {"i": i}} for i in range(20)])
    assert len({f.id for f in futures}) == 20
    outcomes = client.collect(futures, timeout=120)
    assert [o.status for o in outcomes] == ["done"] * 20, [o for o in outcomes if o.error]
    assert [o.id for o in outcomes] == [f.id for f in futures]
    assert [o.done.meta["i"] for o in outcomes] == list(range(20))
    assert all(o.done.usage.completion_tokens == 6 for o in outcomes)


def test_expired_job_fails_with_its_code(client, start_worker):
    start_worker()
    future = client.submit("Too late", deadline_ms=int(time.time() * 1000) - 60_000,
                           meta={"k": "v"})
    with pytest.raises(JobExpired) as e:
        future.result(timeout=60)
    assert e.value.code == "expired" and e.value.retryable is False
    assert e.value.run == ""  # it never ran
    assert e.value.reply.meta == {"k": "v"}
    outcome, = client.collect([future], timeout=1)
    assert outcome.status == "failed" and outcome.error.code == "expired"


def test_invalid_job_is_refused_before_sending(client, kafka, topics):
    with pytest.raises(InvalidJob) as e:
        client.submit("Hello", temperature=-1)
    assert (e.value.code, e.value.field) == ("invalid_field", "temperature")
    with pytest.raises(InvalidJob) as e:
        client.submit_many([{"prompt": "fine"}, {"prompt": "x", "messages": []}])
    assert e.value.code == "invalid_input" and str(e.value).startswith("jobs[1]: prompt")
    consumer = kafka.consumer(topics["jobs"])
    try:
        for p in range(4):
            assert consumer.get_watermark_offsets(TopicPartition(topics["jobs"], p),
                                                  timeout=10)[1] == 0, "a job was sent"
    finally:
        consumer.close()


def test_client_needs_an_existing_reply_topic(bootstrap, topics):
    with pytest.raises(LlmqError, match="reply topic"):
        llmq.Client(bootstrap, jobs_topic=topics["jobs"], reply_topic=topics["jobs"] + ".nope")
