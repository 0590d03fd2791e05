"""test_dlq_unavailable.py — issue 16 point 2's fault test (real broker, the
real llama-server with the tiny model, one thread): the dead-letter topic is
deleted while 1 MB invalid jobs and normal jobs keep arriving for a minute.
The worker must stop taking jobs instead of growing (its RSS stays under the
bound derived below, consumer lag grows instead), and once the topic is
created again every job ends with its replies and every invalid job with its
dead-letter copy, nothing lost, every offset committed.

Why a deleted topic and not an ACL denial: both are waited out for the
worker's own dead-letter topic (delivery.c `permanent`: a missing or
forbidden topic is a permanent refusal only for a job's own reply_to), but a
deleted topic is what the plain listener and the shared broker (auto-create
off) can show; the ACL case was measured on the SASL listener (FINDINGS,
"Security")."""
import time
import urllib.error
import urllib.request
import uuid

import msgpack
from confluent_kafka import Consumer, Producer, TopicPartition

from fault_tools import (ONE_THREAD, ReplyTracker, committed, free_port, group_of, new_topics,
                         pool, read_topic, wait_for)  # noqa: F401

SLOTS = 4
PARTITIONS = 4
# A "1 MB" invalid job: its dead-letter copy (the job plus ~300 bytes of headers)
# must fit the worker producer's message.max.bytes (librdkafka's 1,000,000);
# a larger one is given up (test_bad_input.py).
JOB_BYTES = 998_000
FEED_S = 60                    # how long jobs arrive while the topic is gone
INVALID_PER_S = 1              # 1 MB/s of invalid jobs ...
NORMAL_PER_S = 2               # ... and two normal ones
MIB = 1 << 20

# The bound on RSS growth over the worker's RSS before the outage (KiB):
#  - tasks and the dead-letter copies delivery holds: intake pauses at 2 x
#    slots live tasks or limits.max_pending_bytes (64 MiB by default),
#    whichever comes first, plus the one message that crosses it; the
#    librdkafka producer holds a second copy of each while it is queued;
#  - librdkafka's prefetch: queued.max.messages.kbytes per partition
#    (kafka_group.c: max(4, slots) MiB), plus one fetch response in flight
#    (max.partition.fetch.bytes, 1 MiB, per partition);
#  - 16 MiB of allocator slack (glibc arenas of librdkafka's threads).
HELD_BYTES = min(64 * MIB, 2 * SLOTS * JOB_BYTES) + JOB_BYTES
PREFETCH_BYTES = PARTITIONS * (max(4, SLOTS) * MIB + MIB)
RSS_GROWTH_BOUND_KIB = (2 * HELD_BYTES + PREFETCH_BYTES + 16 * MIB) // 1024


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def metrics(port):
    """{series name with labels: value} from the worker's /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def readyz(port):
    """(HTTP status, body) of the worker's /readyz."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric_sum(values, family):
    return sum(v for k, v in values.items() if k.split("{", 1)[0] == family)


def topic_exists(kafka, topic):
    md = kafka.admin.list_topics(timeout=5).topics.get(topic)
    return md is not None and not md.error


def end_offsets(bootstrap, topic, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}"})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions)}
    finally:
        c.close()


def normal_job(tag, n):
    jid = f"ok-{tag}-{n}"
    return jid, jid.encode(), msgpack.packb({"v": 1, "id": jid, "prompt": "hello",
                                             "max_tokens": 4})


def invalid_job(tag, n):
    """Every fifth one is not msgpack at all (no id: a dead-letter copy only);
    the others a valid map whose temperature is a string (invalid_field: an
    error reply and a dead-letter copy)."""
    jid = f"bad-{tag}-{n}"
    if n % 5 == 4:
        return None, jid.encode(), b"\xc1" + b"z" * (JOB_BYTES - 1)
    value = msgpack.packb({"v": 1, "id": jid, "temperature": "hot",
                           "prompt": "x" * (JOB_BYTES - 100)})
    return jid, jid.encode(), value


class Feed:
    """Produces the jobs and remembers them: ids by kind, keys of invalid jobs."""

    def __init__(self, bootstrap, topic):
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                                  "message.max.bytes": 2_000_000})
        self.topic = topic
        self.tag = uuid.uuid4().hex[:6]
        self.normal, self.invalid_ids, self.invalid_keys = [], [], []
        self.failed = []

    def _send(self, key, value):
        def cb(err, _msg):
            if err:
                self.failed.append(err)
        self.producer.produce(self.topic, value, key=key, on_delivery=cb)
        self.producer.poll(0)

    def normal_one(self):
        jid, key, value = normal_job(self.tag, len(self.normal))
        self.normal.append(jid)
        self._send(key, value)

    def invalid_one(self):
        jid, key, value = invalid_job(self.tag, len(self.invalid_keys))
        self.invalid_keys.append(key)
        if jid:
            self.invalid_ids.append(jid)
        self._send(key, value)

    def flush(self):
        assert self.producer.flush(60) == 0 and not self.failed, f"jobs not produced: {self.failed}"


def test_dead_letter_topic_deleted_while_large_invalid_jobs_arrive(kafka, bootstrap, pool):
    topics = new_topics(kafka, PARTITIONS)
    port = free_port()
    w = pool.start(topics, bootstrap,
                   **{"llama.slots": str(SLOTS), "llama.context": "512",
                      "llama.extra_args": ONE_THREAD, "metrics.listen": f'"127.0.0.1:{port}"',
                      "logging.level": '"info"'})
    replies = ReplyTracker(bootstrap, topics["replies"])
    feed = Feed(bootstrap, topics["jobs"])

    # Warm up with the topic there: the producer knows it, the allocator has
    # seen 1 MB messages.
    for _ in range(3):
        feed.invalid_one()
        feed.normal_one()
    feed.flush()
    replies.wait(feed.normal + feed.invalid_ids, timeout=30)
    time.sleep(2)
    rss_before = rss_kib(w.proc.pid)

    kafka.admin.delete_topics([topics["dead"]], operation_timeout=30)[topics["dead"]].result(30)
    wait_for(lambda: not topic_exists(kafka, topics["dead"]), 30, "the dead-letter topic gone")

    group = group_of(topics)
    parts = list(range(PARTITIONS))

    def lag():
        """Jobs on the broker that the group has not committed."""
        ends = end_offsets(bootstrap, topics["jobs"], PARTITIONS)
        done = committed(bootstrap, group, topics["jobs"], parts)
        return sum(ends.values()) - sum(v or 0 for v in done.values()), ends

    samples = []  # (seconds since the outage began, RSS KiB)
    lags = []     # (seconds, lag)
    start = time.time()
    sent = 0
    while time.time() - start < FEED_S:
        elapsed = time.time() - start
        while sent < elapsed:
            for _ in range(INVALID_PER_S):
                feed.invalid_one()
            for _ in range(NORMAL_PER_S):
                feed.normal_one()
            sent += 1
        samples.append((elapsed, rss_kib(w.proc.pid)))
        if elapsed > 20 * (len(lags) + 1):
            lags.append((round(elapsed), lag()[0]))
        replies.poll(0.5)
    feed.flush()
    outage = metrics(port)
    ready_in_outage = readyz(port)
    answered_in_outage = len(replies.terminated)
    held, ends = lag()
    lags.append((round(time.time() - start), held))

    kafka.create_topic(topics["dead"], 1)
    recreated = time.time()
    all_ids = feed.normal + feed.invalid_ids
    replies.wait(all_ids, timeout=60, tick=lambda: samples.append(
        (time.time() - start, rss_kib(w.proc.pid))))
    copies = read_topic(bootstrap, topics["dead"], len(feed.invalid_keys) - 3, timeout=60)
    wait_for(lambda: committed(bootstrap, group, topics["jobs"], parts) == ends, 60,
             f"offsets {ends} committed")
    recovered_s = time.time() - recreated
    after = metrics(port)
    rss = [kib for _, kib in samples]
    timeline = " ".join(f"{t:.0f}s:{kib // 1024}" for t, kib in samples[::10])
    print(f"\nRSS KiB before {rss_before}, first {rss[0]}, max {max(rss)}, last {rss[-1]}; "
          f"bound before + {RSS_GROWTH_BOUND_KIB}; jobs {len(all_ids)} "
          f"({len(feed.invalid_keys)} invalid); answered during the outage "
          f"{answered_in_outage}; uncommitted (s, jobs) {lags}; recovered in "
          f"{recovered_s:.1f} s; in the outage: finishing "
          f"{metric_sum(outage, 'llmq_jobs_finishing')}, held bytes "
          f"{metric_sum(outage, 'llmq_jobs_held_bytes')}, intake held "
          f"{metric_sum(outage, 'llmq_intake_held')}\nRSS MiB by time: {timeline}")

    assert max(rss) - rss_before <= RSS_GROWTH_BOUND_KIB, samples
    # It stopped taking jobs: the finishing ones hold intake, and the jobs
    # wait in Kafka (the group's lag grows) instead of in the worker.
    assert metric_sum(outage, "llmq_intake_held") == 1, outage
    assert metric_sum(outage, "llmq_jobs_finishing") <= 2 * SLOTS
    assert metric_sum(outage, "llmq_jobs_held_bytes") <= HELD_BYTES
    sent_jobs = sent * (INVALID_PER_S + NORMAL_PER_S)
    assert lags[0][1] < lags[-1][1] and held >= sent_jobs * 3 // 4, (lags, sent_jobs)
    assert ready_in_outage[0] == 503 and topics["dead"] in ready_in_outage[1], ready_in_outage
    log = w.log_text()
    assert "taking no new job: " in log and "taking jobs again after " in log
    # The waiting copies are logged once, not once a second each.
    assert log.count(f"the broker refuses messages to {topics['dead']}") == 1, log[-3000:]
    assert log.count("; trying again") + log.count("; producing again") <= 2, log[-3000:]
    # Nothing lost: every normal job done, every invalid one its error reply
    # (where an id could be read) and its dead-letter copy; nothing given up.
    firsts = replies.check_delivery(feed.normal, expect="done")
    assert len(firsts) == len(feed.normal)
    for jid in feed.invalid_ids:
        first = replies.first_terminal(jid)
        assert first["type"] == "error" and first["code"] == "invalid_field", first
    keys = {m.key() for m in copies}
    missing = [k for k in feed.invalid_keys[3:] if k not in keys]
    assert not missing, f"{len(missing)} dead-letter copies missing: {missing[:5]}"
    gave_up = {k: v for k, v in after.items() if k.startswith("llmq_gave_up_total") and v
               and 'reason="no_address"' not in k}
    assert not gave_up, gave_up
    assert metric_sum(after, "llmq_intake_held") == 0
    replies.close()
