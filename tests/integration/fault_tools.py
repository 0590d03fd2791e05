"""fault_tools.py — what the delivery-guarantee tests (test_bad_input,
test_faults, test_rebalance, test_load) share: producing to a chosen partition,
the worker group's committed offsets and members, a worker's llama-server
child, a reply tracker that checks the at-least-once reading rule, a pool of
workers on topics of any shape, and a private broker a test may restart."""
import os
import pathlib
import signal
import socket
import subprocess
import time
import uuid

import msgpack
import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from llmq_harness import ROOT, Kafka, Worker

FAKE_LLAMA = ROOT / "tests/fakes/fake_llama_server.py"
KAFKA_SH = ROOT / "deploy/local/kafka.sh"

# kafka.properties for tests that kill workers: a dead member leaves the group
# after 6 s (the broker's minimum) instead of librdkafka's 45 s.
FAST_SESSION = "{ session_timeout_ms = 6000; heartbeat_interval_ms = 1000; }"

# llama.extra_args where several real llama-servers share this machine's two
# cores: one thread each, or their spinning threads starve one another.
ONE_THREAD = '["--threads", "1"]'


def group_of(topics):
    """The consumer group the harness gives the workers of these topics."""
    return f"g-{topics['jobs']}"


def new_topics(kafka, partitions=4):
    """Fresh topic names, like conftest's `topics`, with `partitions` job partitions."""
    tag = uuid.uuid4().hex[:8]
    names = {k: f"t{tag}.{k}" for k in ("jobs", "replies", "dead", "metrics")}
    kafka.create_topic(names["jobs"], partitions)
    kafka.create_topic(names["replies"], 4)
    kafka.create_topic(names["dead"], 1)
    kafka.create_topic(names["metrics"], 1)
    return names


class Submitter:
    """Produces jobs (maps or raw bytes) and returns where each landed."""

    def __init__(self, bootstrap):
        # Large enough for the oversized-message tests (the broker allows ~1 MiB).
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                                  "message.max.bytes": 2_000_000})

    def send(self, topic, items, partition=None):
        """items: job maps or (raw bytes, key) pairs. Returns [(partition, offset)]."""
        placed = [None] * len(items)

        def delivered(i):
            def cb(err, msg):
                assert err is None, f"job {i} not acknowledged: {err}"
                placed[i] = (msg.partition(), msg.offset())
            return cb

        for i, item in enumerate(items):
            if isinstance(item, dict):
                value, key = msgpack.packb(item, use_bin_type=True), item.get("id")
            else:
                value, key = item
            kwargs = {"key": key, "on_delivery": delivered(i)}
            if partition is not None:
                kwargs["partition"] = partition
            while True:
                try:
                    self.producer.produce(topic, value, **kwargs)
                    break
                except BufferError:
                    self.producer.poll(0.1)
            self.producer.poll(0)
        assert self.producer.flush(60) == 0, "jobs not acknowledged by the broker"
        assert None not in placed
        return placed


def committed(bootstrap, group, topic, partitions):
    """The group's committed offset per partition (None where nothing is committed)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        got = c.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
    finally:
        c.close()
    return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in got}


def wait_committed(bootstrap, group, topic, want, timeout=30):
    """Wait until every partition p in `want` has a committed offset >= want[p]."""
    deadline = time.time() + timeout
    while True:
        got = committed(bootstrap, group, topic, list(want))
        if all(got[p] is not None and got[p] >= at for p, at in want.items()):
            return got
        if time.time() > deadline:
            raise AssertionError(f"group {group} committed {got}, expected at least {want}")
        time.sleep(0.5)


def read_topic(bootstrap, topic, count, timeout, linger=1.0):
    """The messages of a one-partition topic: until `count` came (or `timeout`
    passed), and whatever else comes within `linger` seconds after that."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        for msg in c.consume(num_messages=100, timeout=0.25):
            if not msg.error():
                got.append(msg)
        if len(got) >= count:
            deadline = min(deadline, time.time() + linger)
    c.close()
    return got


def group_members(kafka, group):
    """Client ids of the group's members (empty when the group has none)."""
    fut = kafka.admin.describe_consumer_groups([group], request_timeout=10)[group]
    try:
        desc = fut.result(timeout=15)
    except KafkaException:
        return []
    return [m.client_id for m in desc.members]


def children(pid):
    """Pids of the processes whose parent is `pid`."""
    kids = []
    for task in pathlib.Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def pid_alive(pid):
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(cond, timeout, what, interval=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def llama_child(worker, timeout=30):
    """The pid of the worker's llama-server child."""
    return wait_for(lambda: (children(worker.proc.pid) or [None])[0], timeout,
                    f"a llama-server child of worker pid {worker.proc.pid}")


class ReplyTracker:
    """Reads a reply topic and holds each job's replies, in order, by id."""

    def __init__(self, bootstrap, topic):
        self.consumer = Consumer({"bootstrap.servers": bootstrap,
                                  "group.id": f"test-{uuid.uuid4().hex}",
                                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        parts = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self.consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        self.by_id = {}
        self.messages = []  # (kafka message, decoded reply)
        self.terminated = set()

    def poll(self, seconds=0.5):
        for msg in self.consumer.consume(num_messages=1000, timeout=seconds):
            if msg.error():
                continue
            reply = msgpack.unpackb(msg.value(), raw=False)
            self.messages.append((msg, reply))
            self.by_id.setdefault(reply.get("id"), []).append(reply)
            if reply.get("type") in ("done", "error"):
                self.terminated.add(reply.get("id"))

    def wait(self, ids, timeout, tick=None):
        """Until every id has a terminal reply; tick() runs between polls."""
        ids = set(ids)
        deadline = time.time() + timeout
        while not ids <= self.terminated and time.time() < deadline:
            self.poll()
            if tick:
                tick()
        missing = sorted(ids - self.terminated)
        assert not missing, (f"{len(missing)} of {len(ids)} job(s) without a terminal reply "
                             f"after {timeout}s: {missing[:5]}")

    def wait_until(self, cond, timeout, what):
        """Read replies until cond(self) holds."""
        deadline = time.time() + timeout
        while not cond(self):
            assert time.time() < deadline, f"timed out after {timeout}s waiting for {what}"
            self.poll(0.1)

    def settle(self, seconds=2.0):
        """Read whatever arrives for a while longer (late duplicates, stray replies)."""
        end = time.time() + seconds
        while time.time() < end:
            self.poll(0.2)

    def terminals(self, job_id):
        return [r for r in self.by_id.get(job_id, []) if r["type"] in ("done", "error")]

    def first_terminal(self, job_id):
        terms = self.terminals(job_id)
        return terms[0] if terms else None

    def chunks(self, job_id, run):
        return [r for r in self.by_id.get(job_id, []) if r["type"] == "chunk" and r["run"] == run]

    def runs(self, job_id):
        """Every run of the job that published anything, in order of first appearance."""
        seen = []
        for r in self.by_id.get(job_id, []):
            if r.get("run") and r["run"] not in seen:
                seen.append(r["run"])
        return seen

    def check_delivery(self, ids, expect="done"):
        """The at-least-once contract for each id: at least one terminal reply;
        never two terminal replies of one run; the first terminal reply's run
        has its chunks complete (seq 0..n-1, text = their concatenation).
        Returns {id: first terminal reply}."""
        firsts = {}
        for job_id in ids:
            terms = self.terminals(job_id)
            assert terms, f"{job_id}: no terminal reply"
            runs = [t["run"] for t in terms]
            assert len(runs) == len(set(runs)), f"{job_id}: two terminal replies of one run {runs}"
            first = terms[0]
            if expect:
                assert first["type"] == expect, f"{job_id}: {first}"
            if first["type"] == "done":
                chunks = self.chunks(job_id, first["run"])
                assert [c["seq"] for c in chunks] == list(range(len(chunks))), \
                    f"{job_id}: chunks of run {first['run']} out of order or missing"
                assert "".join(c["text"] for c in chunks) == first["text"], job_id
            firsts[job_id] = first
        return firsts

    def close(self):
        self.consumer.close()


class WorkerPool:
    """Starts llmq-worker processes on any topics and broker; stops them all at the end."""

    def __init__(self, base_dir, build_dir, llama_bin, model):
        self.base_dir = pathlib.Path(base_dir)
        self.build_dir = build_dir
        self.llama_bin = llama_bin
        self.model = model
        self.workers = []

    def start(self, topics, bootstrap, wait_ready=True, env=None, llama_bin=None, **overrides):
        w = Worker(self.base_dir / f"worker{len(self.workers)}", self.build_dir, bootstrap,
                   topics, llama_bin or self.llama_bin, self.model, overrides)
        self.workers.append(w)
        w.start(env=env)
        if wait_ready:
            w.wait_log("assigned", timeout=90)
        return w

    def stop_all(self):
        for w in self.workers:
            w.stop()


@pytest.fixture
def pool(tmp_path, build_dir, llama_server_bin, tiny_model):
    p = WorkerPool(tmp_path, build_dir, llama_server_bin, tiny_model)
    yield p
    p.stop_all()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateBroker:
    """A broker of this test's own (deploy/local/kafka.sh with its own state dir
    and ports), so that restarting it disturbs no other test."""

    def __init__(self, state_dir):
        self.pidfile = pathlib.Path(state_dir) / "kafka/kafka.pid"
        self.port = free_port()
        self.env = dict(os.environ, LLMQ_STATE=str(state_dir), LLMQ_KAFKA_PORT=str(self.port),
                        LLMQ_KAFKA_CONTROLLER_PORT=str(free_port()), LLMQ_KAFKA_WAIT_S="150",
                        LLMQ_KAFKA_SASL="0")  # the plain listener is all it needs
        self.bootstrap = f"127.0.0.1:{self.port}"

    def run(self, command):
        out = subprocess.run(["bash", str(KAFKA_SH), command], env=self.env, capture_output=True,
                             text=True, timeout=240)
        assert out.returncode == 0, f"kafka.sh {command} failed:\n{out.stderr[-3000:]}"

    def start(self):
        self.run("start")

    def stop(self):
        self.run("stop")

    def kill(self):
        """SIGKILL, as a crash would."""
        pid = int(self.pidfile.read_text())
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), 30, f"broker pid {pid} to die")
