"""test_client.py — what Client puts on Kafka for lanes, steering fields and
cancels, and how it settles a cancelled job, with librdkafka's Producer and
Consumer replaced by in-memory fakes (tests/integration/test_python_client.py
runs the client against a real broker and worker)."""
import types

import msgpack
import pytest

import llmq
from llmq import client as client_module
from llmq.control import Cancel, decode_cancel
from llmq.errors import DeliveryFailed, InvalidCancel, JobCancelled


class FakeProducer:
    """Records produced messages; the broker acknowledges them (or fails them
    with `fail`) on poll() and flush()."""

    fail = None

    def __init__(self, config):
        self.config = config
        self.sent = []
        self._unanswered = []

    def produce(self, topic, value, key=None, headers=None, on_delivery=None):
        self.sent.append(types.SimpleNamespace(topic=topic, value=value, key=key,
                                               headers=headers))
        self._unanswered.append(on_delivery)

    def poll(self, _timeout=0):
        answered, self._unanswered = self._unanswered, []
        for delivered in answered:
            delivered(self.fail, None)
        return len(answered)

    def flush(self, _timeout=None):
        self.poll()
        return 0


class FakeConsumer:
    """One reply partition, nothing to read."""

    def __init__(self, config):
        self.config = config

    def list_topics(self, topic, timeout=None):
        t = types.SimpleNamespace(error=None, partitions={0: None})
        return types.SimpleNamespace(topics={topic: t})

    def get_watermark_offsets(self, tp, timeout=None):
        return 0, 0

    def assign(self, partitions):
        pass

    def poll(self, timeout):
        return None

    def close(self):
        pass


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setattr(client_module, "Producer", FakeProducer)
    monkeypatch.setattr(client_module, "Consumer", FakeConsumer)
    c = llmq.Client("fake:9092", lanes={"urgent": "llmq.jobs.urgent", "batch": "llmq.jobs.batch"})
    yield c
    c.close()


def sent(client):
    return client._producer.sent


def test_a_job_goes_to_its_lanes_topic(client):
    client.submit("a")
    client.submit("b", lane="urgent")
    client.submit_many([{"prompt": "c", "lane": "batch"}, {"prompt": "d"}])
    assert [m.topic for m in sent(client)] == ["llmq.jobs", "llmq.jobs.urgent",
                                               "llmq.jobs.batch", "llmq.jobs"]
    assert all("lane" not in msgpack.unpackb(m.value) for m in sent(client))


def test_an_unknown_lane_sends_nothing(client):
    with pytest.raises(ValueError, match="lane 'vip'"):
        client.submit("a", lane="vip")
    with pytest.raises(ValueError, match=r"jobs\[1\]: lane"):
        client.submit_many([{"prompt": "a"}, {"prompt": "b", "lane": "vip"}])
    assert sent(client) == []


def test_steering_fields_reach_the_job(client):
    client.submit("a", id="j-1", logprobs=5, lora=[{"name": "style", "scale": 0.5}], chunk_ms=0)
    job = msgpack.unpackb(sent(client)[0].value)
    assert (job["logprobs"], job["lora"], job["chunk_ms"]) == (5, [{"name": "style",
                                                                    "scale": 0.5}], 0)
    assert list(job) == ["v", "id", "prompt", "reply_to", "logprobs", "lora", "chunk_ms"]
    with pytest.raises(llmq.InvalidJob) as e:
        client.submit("a", logprobs=21)
    assert e.value.field == "logprobs"


def test_cancel_goes_to_the_control_topic_keyed_by_the_job(client):
    client.cancel("job-1", reason="user pressed Ctrl-C")
    (m,) = sent(client)
    assert (m.topic, m.key) == ("llmq.control", b"job-1")
    assert dict(m.headers) == {"llmq-type": b"cancel", "llmq-id": b"job-1"}
    assert decode_cancel(m.value) == Cancel("job-1", reason="user pressed Ctrl-C")
    client.cancel("job-2", run="w1-000003")
    assert decode_cancel(sent(client)[1].value) == Cancel("job-2", run="w1-000003")


def test_a_bad_cancel_sends_nothing(client):
    with pytest.raises(InvalidCancel):
        client.cancel("")
    with pytest.raises(InvalidCancel):
        client.cancel("j", run="")
    assert sent(client) == []


def test_an_unacknowledged_cancel_raises(client):
    client._producer.fail = "Broker: Topic authorization failed"
    with pytest.raises(DeliveryFailed, match="authorization"):
        client.cancel("job-1")


def test_future_cancel_sends_one_cancel_and_stops_waiting(client):
    future = client.submit("a", id="j-1")
    assert future.cancel() is True
    assert future.cancel() is True  # again: nothing more is sent
    assert future.cancelled()
    assert [(m.topic, m.key) for m in sent(client)] == [("llmq.jobs", b"j-1"),
                                                        ("llmq.control", b"j-1")]
    assert client._pending == {}


def test_future_cancel_after_the_outcome_sends_nothing(client):
    future = client.submit("a", id="j-1")
    client._route(b"j-1", msgpack.packb({
        "v": 1, "type": "error", "id": "j-1", "run": "", "code": "expired", "message": "m",
        "retryable": False, "worker": "w"}))
    assert future.cancel() is False
    assert len(sent(client)) == 1


def test_closing_a_stream_early_cancels_the_job(client):
    stream = client.stream("a", id="j-1", timeout=5)
    stream.close()
    assert [m.topic for m in sent(client)] == ["llmq.jobs", "llmq.control"]


def test_a_cancelled_reply_fails_the_future_with_the_partial_text(client):
    future = client.submit("a", id="j-1")
    client.cancel("j-1")
    client._route(b"j-1", msgpack.packb({
        "v": 1, "type": "error", "id": "j-1", "run": "w1-000001", "code": "cancelled",
        "message": "cancelled", "retryable": False, "worker": "w", "partial_text": "Once"}))
    with pytest.raises(JobCancelled) as e:
        future.result(1)
    assert (e.value.partial_text, e.value.retryable, e.value.run) == ("Once", False, "w1-000001")
    assert client.collect([future])[0].status == "failed"
