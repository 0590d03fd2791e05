"""llmq_harness.py — helpers shared by the integration tests: a Kafka client
wrapper (topics, producing jobs, collecting replies) and a Worker that runs
build/llmq-worker with a generated config and captures its log."""
import os
import pathlib
import re
import signal
import subprocess
import threading
import time
import uuid

import msgpack
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = pathlib.Path(__file__).resolve().parents[2]

# The names of the topics the suite makes (a random 8-hex tag in each): what
# Kafka.sweep_suite_topics may delete. Nothing else on the broker matches.
SUITE_TOPIC = re.compile(r"^(t[0-9a-f]{8}\.|(allowed|evil)\.t?[0-9a-f]{8}$|rig-[0-9a-f]{8}$)")


def job(prompt=None, messages=None, **fields):
    """A v1 job map with a fresh id."""
    j = {"v": 1, "id": fields.pop("id", None) or f"job-{uuid.uuid4().hex[:12]}"}
    if prompt is not None:
        j["prompt"] = prompt
    if messages is not None:
        j["messages"] = messages
    j.update(fields)
    return j


class Kafka:
    """The suite's view of the broker. Every topic made through create_topic is
    deleted again by delete_created: a broker that kept them would load each
    run's (429 topics in a CI run) at every start (55 s at 19,500 partitions)."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1})
        self.created = []

    def wait_ready(self, timeout):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                self.admin.list_topics(timeout=5)
                return
            except Exception as e:  # noqa: BLE001 - report the last error
                last = e
                time.sleep(0.5)
        raise AssertionError(f"Kafka at {self.bootstrap} not answering: {last}; "
                             "start it with deploy/local/kafka.sh start")

    def create_topic(self, name, partitions):
        self.created.append(name)
        fs = self.admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=30)
        fs[name].result(timeout=30)
        deadline = time.time() + 30
        while time.time() < deadline:
            md = self.admin.list_topics(name, timeout=5).topics.get(name)
            if md and not md.error and len(md.partitions) == partitions:
                return
            time.sleep(0.1)
        raise AssertionError(f"topic {name} not ready")

    def submit(self, topic, *jobs, raw=None, key=None):
        """Produce job maps (msgpack-encoded) or raw bytes; wait for acks."""
        for j in jobs:
            self.producer.produce(topic, msgpack.packb(j, use_bin_type=True),
                                  key=j.get("id") if isinstance(j, dict) else None)
        if raw is not None:
            self.producer.produce(topic, raw, key=key)
        assert self.producer.flush(30) == 0, "jobs not acknowledged by the broker"

    def consumer(self, topic, partitions=None):
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                      "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        md = self.admin.list_topics(topic, timeout=10).topics[topic]
        c.assign([TopicPartition(topic, p, 0) for p in md.partitions])
        return c

    def delete_topics(self, names, timeout=120):
        """Delete `names` (in requests of 500); returns {name: why} for each
        one the broker did not delete (one already gone counts as deleted)."""
        failed = {}
        for i in range(0, len(names), 500):
            fs = self.admin.delete_topics(names[i:i + 500], operation_timeout=timeout)
            for name, f in fs.items():
                try:
                    f.result(timeout=timeout)
                except KafkaException as e:
                    if e.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                        failed[name] = str(e)
        return failed

    def delete_created(self):
        """Delete the topics this run made; {name: why} for any left."""
        names, self.created = sorted(set(self.created)), []
        return self.delete_topics(names) if names else {}

    def sweep_suite_topics(self):
        """Delete the topics that earlier runs of the suite left (names of the
        SUITE_TOPIC shape): only safe while no other run uses the broker.
        Returns (how many were found, {name: why} for any left)."""
        names = sorted(t for t in self.admin.list_topics(timeout=30).topics
                       if SUITE_TOPIC.match(t))
        return len(names), (self.delete_topics(names) if names else {})

    def close(self):
        self.producer.flush(10)


class Replies:
    """Collects the replies of a reply topic, by job id, in arrival order."""

    def __init__(self, kafka, topic):
        self.consumer = kafka.consumer(topic)
        self.by_id = {}
        self.raw = []

    def poll_until(self, done, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if done(self):
                return True
            msg = self.consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            reply = msgpack.unpackb(msg.value(), raw=False)
            headers = dict(msg.headers() or [])
            self.raw.append((msg, reply, headers))
            self.by_id.setdefault(reply.get("id"), []).append(reply)
        return done(self)

    def terminal(self, job_id):
        for r in self.by_id.get(job_id, []):
            if r.get("type") in ("done", "error"):
                return r
        return None

    def wait_terminal(self, ids, timeout=120):
        ids = list(ids)
        ok = self.poll_until(lambda s: all(s.terminal(i) for i in ids), timeout)
        missing = [i for i in ids if not self.terminal(i)]
        assert ok, f"{len(missing)} job(s) without a terminal reply after {timeout}s: {missing[:5]}"
        return {i: self.terminal(i) for i in ids}

    def chunks(self, job_id, run):
        return [r for r in self.by_id.get(job_id, []) if r["type"] == "chunk" and r["run"] == run]

    def close(self):
        self.consumer.close()


class Worker:
    def __init__(self, workdir, build_dir, bootstrap, topics, llama_bin, model, overrides):
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.build_dir = pathlib.Path(build_dir)
        self.cfg_path = self.dir / "worker.cfg"
        self.log_path = self.dir / "worker.log"
        self.proc = None
        self.lines = []
        self.lock = threading.Lock()
        settings = {
            "worker.id": f'"w-{uuid.uuid4().hex[:6]}"',
            "kafka.brokers": f'"{bootstrap}"',
            "kafka.group_id": f'"g-{topics["jobs"]}"',
            "kafka.jobs_topics": f'["{topics["jobs"]}"]',
            "kafka.reply_topic": f'"{topics["replies"]}"',
            "kafka.reply_allowlist": f'["{topics["replies"]}", "allowed.*"]',
            "kafka.dead_letter_topic": f'"{topics["dead"]}"',
            "kafka.metrics_topic": f'"{topics["metrics"]}"',
            "llama.binary": f'"{llama_bin}"',
            "llama.model": f'"{model}"',
            "llama.gpu": "-1",
            "llama.slots": "4",
            "llama.context": "2048",
            "limits.max_tokens": "256",
            "limits.default_max_tokens": "16",
            "limits.drain_timeout_s": "10",
            "metrics.listen": '""',
            "logging.level": '"debug"',
        }
        settings.update({k: v for k, v in overrides.items() if not k.startswith("_")})
        self.extra_cfg = overrides.get("_raw", "")
        self.write_config(settings)

    def write_config(self, settings):
        groups = {}
        for key, value in settings.items():
            group, name = key.split(".", 1)
            groups.setdefault(group, []).append(f"  {name} = {value};")
        text = "".join(f"{g} = {{\n" + "\n".join(lines) + "\n};\n" for g, lines in groups.items())
        self.cfg_path.write_text(text + self.extra_cfg)

    def start(self, env=None):
        e = dict(os.environ)
        e.update(env or {})
        self.logfile = open(self.log_path, "w")
        self.proc = subprocess.Popen([str(self.build_dir / "llmq-worker"), "-c", str(self.cfg_path)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=e)
        threading.Thread(target=self._read_log, daemon=True).start()

    def _read_log(self):
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace")
            self.logfile.write(line)
            self.logfile.flush()
            with self.lock:
                self.lines.append(line)

    def log_text(self):
        with self.lock:
            return "".join(self.lines)

    def wait_log(self, needle, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.log_text():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        tail = "".join(self.log_text().splitlines(True)[-40:])
        raise AssertionError(f"worker log never said {needle!r} (exit {self.proc.poll()}); "
                             f"last lines:\n{tail}")

    def signal(self, sig):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_exit(self, timeout=30):
        return self.proc.wait(timeout=timeout)

    def stop(self):
        if not self.proc:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.logfile.close()
