"""rig.py — the processes the benchmarks measure and how they are measured: a
llama-server (or the C fast fake) started once with fixed flags, llmq-worker and
python_worker.py pointed at it over fresh Kafka topics, CPU and RSS read from /proc,
and a reply collector that timestamps every reply on the benchmark's monotonic clock.

Every wait here is bounded; every process started here is stopped by the caller
(context managers) and every topic created here is deleted."""
import os
import pathlib
import re
import subprocess
import sys
import time
import urllib.request
import uuid

import msgpack
from confluent_kafka import Consumer, Producer, TopicPartition

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from llmq_harness import Kafka, Worker  # noqa: E402  (the integration tests' helpers)

CLK_TCK = os.sysconf("SC_CLK_TCK")
now = time.perf_counter  # the one clock every benchmark timestamp is taken on


# ---- /proc ----

def cpu_seconds(pid):
    """user + system CPU seconds of a process (all its threads), or None if it is gone."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kb(pid):
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def ctx_switches(pid):
    """(voluntary, involuntary) context switches summed over a process's live threads."""
    vol = invol = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            text = pathlib.Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except OSError:
            continue  # a thread that just ended
        for line in text.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                vol += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                invol += int(line.split()[1])
    return vol, invol


def system_cpu():
    """(busy, total) jiffies over all CPUs, from /proc/stat."""
    v = [int(x) for x in pathlib.Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def pin(pid, cpus):
    """Pin every thread of a process (threads it creates later inherit it)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except OSError:
            pass  # a thread that just ended


def broker_pid():
    state = pathlib.Path(os.environ.get("LLMQ_STATE") or
                         pathlib.Path.home() / ".cache/llmq/state")
    try:
        return int((state / "kafka" / "kafka.pid").read_text().strip())
    except (OSError, ValueError):
        return None


class CpuMeter:
    """CPU seconds used by named processes (and the whole machine) between start and stop."""

    def __init__(self, pids):
        self.pids = {k: v for k, v in pids.items() if v}

    def __enter__(self):
        self.t0 = now()
        self.cpu0 = {k: cpu_seconds(p) for k, p in self.pids.items()}
        self.self0 = sum(os.times()[:2])
        self.sys0 = system_cpu()
        return self

    def stop(self):
        wall = now() - self.t0
        used = {k: (cpu_seconds(p) or 0) - (self.cpu0[k] or 0) for k, p in self.pids.items()}
        used["bench"] = sum(os.times()[:2]) - self.self0
        busy, total = system_cpu()
        used["machine_busy_frac"] = (busy - self.sys0[0]) / max(1, total - self.sys0[1])
        # Cores busy with anything but the processes measured here (other users).
        ours = sum(v for k, v in used.items() if k != "machine_busy_frac")
        used["others_cores"] = max(0.0, used["machine_busy_frac"] * os.cpu_count() - ours / wall)
        used["wall"] = wall
        return used

    def __exit__(self, *exc):
        return False


# ---- servers ----

class Server:
    """llama-server or fast_fake_llama on 127.0.0.1:<free port>, ready on return."""

    def __init__(self, argv, log_path, cpus=None, timeout=120):
        self.log_path = pathlib.Path(log_path)
        self.log = open(self.log_path, "w")
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLAMA_ARG_")}
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     preexec_fn=(lambda: os.sched_setaffinity(0, cpus))
                                     if cpus else None)
        self.pid = self.proc.pid
        self.argv = argv
        deadline = time.time() + timeout
        self.url = None
        while time.time() < deadline and self.proc.poll() is None:
            m = re.search(r"listening on (http://[0-9.]+:\d+)", self.log_path.read_text())
            if m:
                self.url = m.group(1)
                if self.healthy():
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{argv[0]} not ready within {timeout}s; log: {self.log_path}")

    def healthy(self):
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def llama_server_argv(binary, model, slots, context, threads=0):
    """The flags llmq's supervisor gives llama-server (worker/supervisor.c), minus the API key;
    threads > 0 adds --threads (llama.extra_args for a worker)."""
    return [binary, "-m", model, "--host", "127.0.0.1", "--port", "0", "--parallel", str(slots),
            "-c", str(context), "-ngl", "0"] + (["--threads", str(threads)] if threads else [])


# ---- Kafka ----

class Topics:
    """A fresh set of topics for one run (jobs, replies, dead, metrics), deleted on exit."""

    def __init__(self, kafka, partitions):
        tag = f"bench{uuid.uuid4().hex[:8]}"
        self.kafka = kafka
        self.names = {"jobs": f"{tag}.jobs", "replies": f"{tag}.replies",
                      "dead": f"{tag}.dead", "metrics": f"{tag}.metrics"}
        self.partitions = partitions
        for role, name in self.names.items():
            kafka.create_topic(name, partitions if role in ("jobs", "replies") else 1)
        self.group = f"g-{self.names['jobs']}"

    def __getitem__(self, role):
        return self.names[role]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for name, why in self.kafka.delete_topics(list(self.names.values()), timeout=30).items():
            print(f"bench: could not delete topic {name}: {why}", file=sys.stderr)
        return False


def job_producer(bootstrap):
    # linger.ms 0: a job leaves at once, so the latency stage times the worker, not batching.
    # batch.size as llmq's producers set it (the Python client, the CLI):
    # with librdkafka's 1 MB the worker holds whole 1 MB fetched batches.
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 0,
                     "queue.buffering.max.messages": 1_000_000, "batch.size": 65536})


def produce_jobs(producer, topic, jobs):
    for j in jobs:
        while True:
            try:
                producer.produce(topic, msgpack.packb(j), key=j["id"])
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)


class Replies:
    """Reads a reply topic from the start; per job: first chunk time, done time, done reply."""

    def __init__(self, bootstrap, topic, partitions):
        self.consumer = Consumer({"bootstrap.servers": bootstrap,
                                  "group.id": f"bench-{uuid.uuid4().hex}",
                                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        self.consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        self.first = {}
        self.done = {}
        self.done_at = {}
        self.messages = 0

    def poll(self, timeout):
        msg = self.consumer.poll(timeout)
        if msg is None or msg.error():
            return
        t = now()
        self.messages += 1
        reply = msgpack.unpackb(msg.value())
        job_id = reply.get("id")
        if reply["type"] == "chunk":
            self.first.setdefault(job_id, t)
        else:
            self.done[job_id] = reply
            self.done_at[job_id] = t

    def wait(self, ids, timeout):
        deadline = now() + timeout
        while now() < deadline and not all(i in self.done for i in ids):
            self.poll(0.2)
        missing = [i for i in ids if i not in self.done]
        if missing:
            raise RuntimeError(f"{len(missing)} job(s) without a done reply after {timeout}s")

    def close(self):
        self.consumer.close()


class Offsets:
    """Progress of a consumer group and a reply topic, read without joining the group."""

    def __init__(self, bootstrap, group, jobs_topic, reply_topic, partitions):
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                  "enable.auto.commit": False})
        self.jobs = [TopicPartition(jobs_topic, p) for p in range(partitions)]
        self.replies = [TopicPartition(reply_topic, p) for p in range(partitions)]

    def committed(self):
        return sum(max(0, tp.offset) for tp in self.consumer.committed(self.jobs, timeout=10))

    def reply_count(self):
        return sum(self.consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1]
                   for tp in self.replies)

    def close(self):
        self.consumer.close()


# ---- workers ----

class LlmqWorker:
    """llmq-worker against an external llama-server (llama.url), through the test harness."""

    kind = "llmq"

    def __init__(self, workdir, build_dir, bootstrap, topics, url, slots, cpus=None,
                 settings=None):
        overrides = {"llama.url": f'"{url}"', "llama.slots": str(slots),
                     "limits.max_tokens": "4096", "logging.level": '"info"',
                     "kafka.group_id": f'"{topics.group}"', "metrics.heartbeat_s": "0"}
        overrides.update(settings or {})
        self.w = Worker(workdir, build_dir, bootstrap, topics.names, "unused", "unused",
                        overrides)
        self.w.start()
        self.pid = self.w.proc.pid
        if cpus:
            pin(self.pid, cpus)
        self.w.wait_log("assigned", timeout=60)
        if cpus:
            pin(self.pid, cpus)

    def alive(self):
        return self.w.proc.poll() is None

    def stop(self):
        self.w.stop()


class PyWorker:
    """tests/bench/python_worker.py, the plain Python peer."""

    kind = "python"

    def __init__(self, workdir, bootstrap, topics, url, slots, cpus=None):
        workdir = pathlib.Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "python_worker.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "python_worker.py"), "--bootstrap", bootstrap,
             "--group", topics.group, "--jobs-topic", topics["jobs"],
             "--reply-topic", topics["replies"], "--llama-url", url, "--slots", str(slots)],
            stdout=self.log, stderr=subprocess.STDOUT,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
        self.pid = self.proc.pid
        deadline = time.time() + 60
        while "assigned" not in self.log_path.read_text():
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError(f"python_worker did not join; log: {self.log_path}")
            time.sleep(0.1)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
