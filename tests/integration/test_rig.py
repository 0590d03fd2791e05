"""test_rig.py — the rig itself works: the real broker round-trips a message
through librdkafka from C, the real llama-server streams a completion with
the tiny model through libcurl (tests/tools/rig_smoke.c), the local
stack's model (deploy/local/models.sh smollm2) answers a chat question, and
the suite deletes the topics it makes (a broker keeping every run's
partitions took 55 s to start, then more than tests/run.sh waited)."""
import contextlib
import json
import pathlib
import re
import subprocess
import threading
import time
import urllib.request
import uuid

import pytest

from llmq_harness import SUITE_TOPIC, Kafka

ROOT = pathlib.Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def running_llama_server(binary, model, *extra):
    """A llama-server on a free loopback port, healthy; yields its URL."""
    proc = subprocess.Popen([binary, "-m", model, "--host", "127.0.0.1", "--port", "0",
                             "-c", "2048", "--parallel", "2", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        deadline = time.time() + 60
        lines = []
        while time.time() < deadline and url is None:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"listening on (http://[0-9.]+:\d+)", line)
            if m:
                url = m.group(1)
        assert url, "llama-server did not say where it listens:\n" + "".join(lines[-20:])
        # Keep draining its stderr so it never blocks on a full pipe.
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(url + "/health", timeout=2).status == 200:
                    break
            except Exception:  # noqa: BLE001 - 503 while loading
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def llama_server(llama_server_bin, tiny_model):
    with running_llama_server(llama_server_bin, tiny_model) as url:
        yield url


def test_kafka_roundtrip_from_c(kafka, build_dir):
    topic = f"rig-{uuid.uuid4().hex[:8]}"
    kafka.create_topic(topic, 1)
    out = subprocess.run([str(build_dir / "rig_smoke"), "kafka", kafka.bootstrap, topic],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "consumed it back" in out.stdout


def test_suite_topics_are_deleted(kafka):
    """delete_created removes what create_topic made; every name the suite
    makes has the shape that LLMQ_SWEEP_SUITE_TOPICS sweeps, and nothing else
    (the local stack's llmq.jobs, a bench run's topics) has it."""
    tag = uuid.uuid4().hex[:8]
    mine = Kafka(kafka.bootstrap)
    names = [f"t{tag}.jobs", f"t{tag}.jobs.urgent", f"allowed.t{tag}", f"evil.{tag}", f"rig-{tag}"]
    for name in names:
        mine.create_topic(name, 1)
    assert all(SUITE_TOPIC.match(n) for n in names)
    assert not any(SUITE_TOPIC.match(n) for n in
                   ("llmq.jobs", "llmq.replies", f"bench{tag}.jobs", f"t{tag}", "__consumer_offsets"))
    assert mine.delete_created() == {}
    assert mine.created == []
    deadline = time.time() + 30
    while set(names) & set(kafka.admin.list_topics(timeout=10).topics) and time.time() < deadline:
        time.sleep(0.2)
    assert not set(names) & set(kafka.admin.list_topics(timeout=10).topics)
    mine.close()


def test_llama_stream_from_c(llama_server, build_dir):
    out = subprocess.run([str(build_dir / "rig_smoke"), "llama", llama_server],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "streamed" in out.stdout
    assert out.stdout.count("data:") >= 16  # one event per token, n_predict 16


def test_stack_model_answers(llama_server_bin):
    """The stack's default model, with its GGUF's chatml template, answers in
    words (the base Gemma it replaced streamed noise to the same question)."""
    model = subprocess.run(["bash", str(ROOT / "deploy/local/models.sh"), "smollm2"],
                           check=True, capture_output=True, text=True, timeout=600).stdout.strip()
    body = json.dumps({"messages": [{"role": "user",
                                     "content": "Write one sentence about message queues."}],
                       "max_tokens": 48, "temperature": 0}).encode()
    with running_llama_server(llama_server_bin, model, "--jinja") as url:
        request = urllib.request.Request(url + "/v1/chat/completions", body,
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.load(response)["choices"][0]["message"]["content"]
    assert "message queue" in answer.lower(), answer
