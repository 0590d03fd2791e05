"""conftest.py — fixtures for the integration tests: the real Kafka broker
(started by tests/run.sh through deploy/local/kafka.sh), the real llama-server
with the tiny model, fresh topics per test, and llmq-worker processes.

Everything that is missing makes the test fail with a message saying what to
run; nothing is skipped silently."""
import os
import pathlib
import signal
import subprocess
import time
import uuid

import pytest

from llmq_harness import SUITE_TOPIC, Kafka, Worker, ROOT


def _need_env(name, hint):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: {hint}", pytrace=False)
    return value


@pytest.fixture(scope="session")
def bootstrap():
    return os.environ.get("LLMQ_KAFKA_BOOTSTRAP", "127.0.0.1:19092")


@pytest.fixture(scope="session")
def kafka(bootstrap, pytestconfig):
    """The broker, for the whole session. With LLMQ_SWEEP_SUITE_TOPICS=1 (tests/run.sh
    sets it when it started the broker itself, so no other run is using it) the topics
    that earlier runs left are deleted first; the topics this run makes are deleted at
    its end (LLMQ_KEEP_TOPICS=1 keeps them, to read after a failure)."""
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")

    def say(line):  # to the terminal: pytest captures what a fixture prints
        with capture.global_and_fixture_disabled():
            print(f"\n{line}", flush=True)
    k = Kafka(bootstrap)
    k.wait_ready(timeout=30)
    if os.environ.get("LLMQ_SWEEP_SUITE_TOPICS") == "1":
        t0 = time.monotonic()
        found, left = k.sweep_suite_topics()
        say(f"conftest: deleted {found - len(left)} of {found} topics left by earlier runs"
            f" ({time.monotonic() - t0:.1f} s)")
        _report_left(say, left)
    yield k
    odd = sorted({n for n in k.created if not SUITE_TOPIC.match(n)})
    if os.environ.get("LLMQ_KEEP_TOPICS") != "1":
        made = len(set(k.created))
        left = k.delete_created()
        say(f"conftest: deleted {made - len(left)} of the {made} topics this run made")
        _report_left(say, left)
    k.close()
    assert not odd, f"topics a sweep would miss after a killed run (widen SUITE_TOPIC): {odd}"


def _report_left(say, left):
    for name, why in sorted(left.items()):
        say(f"conftest: topic {name} not deleted: {why}")


@pytest.fixture(scope="session")
def build_dir():
    d = pathlib.Path(os.environ.get("LLMQ_BUILD_DIR", ROOT / "build"))
    if not (d / "llmq-worker").exists():
        pytest.fail(f"{d}/llmq-worker missing: build first (tests/run.sh does)", pytrace=False)
    return d


@pytest.fixture(scope="session")
def llama_server_bin():
    path = os.environ.get("LLAMA_SERVER") or subprocess.run(
        ["bash", str(ROOT / "deploy/local/llama.sh"), "path"],
        check=True, capture_output=True, text=True).stdout.strip()
    if not os.access(path, os.X_OK):
        pytest.fail(f"llama-server not executable: {path}", pytrace=False)
    return path


def _model(env, target):
    """$env, else what `models.sh target` makes; a missing file fails the test."""
    path = os.environ.get(env) or subprocess.run(
        ["bash", str(ROOT / "deploy/local/models.sh"), target],
        check=True, capture_output=True, text=True).stdout.strip()
    if not os.path.exists(path):
        pytest.fail(f"{target} model missing: {path}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def tiny_model():
    return _model("LLMQ_TINY_MODEL", "tiny")


@pytest.fixture(scope="session")
def tiny_lora():
    """The tiny model's random LoRA adapter (make_tiny_model.py --lora-out)."""
    return _model("LLMQ_TINY_LORA", "tiny-lora")


@pytest.fixture
def topics(kafka):
    """A fresh set of topic names (jobs with 4 partitions, replies, dead)."""
    tag = uuid.uuid4().hex[:8]
    names = {
        "jobs": f"t{tag}.jobs",
        "replies": f"t{tag}.replies",
        "dead": f"t{tag}.dead",
        "metrics": f"t{tag}.metrics",
    }
    kafka.create_topic(names["jobs"], 4)
    kafka.create_topic(names["replies"], 4)
    kafka.create_topic(names["dead"], 1)
    kafka.create_topic(names["metrics"], 1)
    return names


@pytest.fixture
def start_worker(tmp_path, build_dir, llama_server_bin, tiny_model, bootstrap, topics):
    """start_worker(**overrides) -> Worker; every worker is stopped after the test.
    _env={...} adds environment variables for the worker."""
    workers = []

    def start(wait_ready=True, **overrides):
        w = Worker(tmp_path / f"worker{len(workers)}", build_dir, bootstrap, topics,
                   llama_server_bin, tiny_model, overrides)
        workers.append(w)
        w.start(overrides.get("_env"))
        if wait_ready:
            w.wait_log("assigned", timeout=60)
        return w

    yield start
    for w in workers:
        w.stop()
