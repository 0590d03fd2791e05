"""test_python_steering.py — the Python client's steering messages on the real
broker, without a worker: a job sent to a priority lane lands on that lane's
topic, and Client.cancel() and JobFuture.cancel() put v1 cancels (keyed by the
job id, with their headers) on the control topic. What workers do with them
is tested with the worker."""
import sys
import time
import uuid

from llmq_harness import ROOT

sys.path.insert(0, str(ROOT / "schemas" / "python"))  # no install step needed

import llmq  # noqa: E402


def drain(kafka, topic, count, timeout=30):
    """The first `count` messages of `topic` (all partitions)."""
    consumer = kafka.consumer(topic)
    got, deadline = [], time.time() + timeout
    try:
        while len(got) < count and time.time() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                got.append(msg)
    finally:
        consumer.close()
    assert len(got) == count, f"{topic}: {len(got)} of {count} messages"
    return got


def test_lanes_and_cancels_reach_their_topics(bootstrap, kafka, topics):
    urgent, control = topics["jobs"] + ".urgent", f"t{uuid.uuid4().hex[:8]}.control"
    kafka.create_topic(urgent, 2)
    kafka.create_topic(control, 1)
    with llmq.Client(bootstrap, jobs_topic=topics["jobs"], reply_topic=topics["replies"],
                     lanes={"urgent": urgent}, control_topic=control) as client:
        client.submit("now", id="u-1", lane="urgent", logprobs=2, chunk_ms=0)
        future = client.submit("later", id="n-1")
        client.cancel("u-1", reason="changed my mind")
        assert future.cancel() and future.cancelled()

    (lane_msg,) = drain(kafka, urgent, 1)
    job = llmq.decode_job(lane_msg.value())
    assert (job.id, job.logprobs, job.chunk_ms) == ("u-1", 2, 0)
    assert drain(kafka, topics["jobs"], 1)[0].key() == b"n-1"
    cancels = drain(kafka, control, 2)
    assert [llmq.decode_cancel(m.value()) for m in cancels] == [
        llmq.Cancel("u-1", reason="changed my mind"), llmq.Cancel("n-1")]
    assert [m.key() for m in cancels] == [b"u-1", b"n-1"]
    assert [dict(m.headers()) for m in cancels] == [
        {"llmq-type": b"cancel", "llmq-id": b"u-1"}, {"llmq-type": b"cancel", "llmq-id": b"n-1"}]
