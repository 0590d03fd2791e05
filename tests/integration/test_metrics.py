"""test_metrics.py — operators' view of a worker: the Prometheus endpoint
(parsed by prometheus_client's real text parser), /healthz and /readyz through
llama-server loading and dying, and heartbeats on the metrics topic checked
against schemas/json/heartbeat.schema.json."""
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

import jsonschema
import msgpack
from prometheus_client.parser import text_string_to_metric_families

from llmq_harness import ROOT, Replies, job

FAKE = str(ROOT / "tests/fakes/fake_llama_server.py")


def metrics_url(worker):
    worker.wait_log("metrics on http://", timeout=30)
    port = re.search(r"metrics on http://\S+ \(port (\d+)\)", worker.log_text()).group(1)
    return f"http://127.0.0.1:{port}"


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample_value(fams, family, name=None, **labels):
    for s in fams[family].samples:
        if (name is None or s.name == name) and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise AssertionError(f"no sample {family} {labels}")


def test_prometheus_endpoint_after_jobs(kafka, topics, start_worker):
    # One chunk per token (coalesce_ms 0), so that chunks published = tokens.
    w = start_worker(**{"metrics.listen": '"127.0.0.1:0"', "chunking.coalesce_ms": "0"})
    base = metrics_url(w)
    replies = Replies(kafka, topics["replies"])
    jobs = [job(f"metric job {i}", max_tokens=6) for i in range(5)]
    bad = job("x", max_tokens=-3)
    kafka.submit(topics["jobs"], *jobs, bad)
    replies.wait_terminal([j["id"] for j in jobs + [bad]], timeout=60)

    status, ctype, text = get(base + "/metrics")
    assert status == 200
    assert ctype.startswith("text/plain") and "0.0.4" in ctype
    fams = families(text)
    # Names follow Prometheus conventions; every series has worker/model/gpu.
    for fam in fams.values():
        for s in fam.samples:
            assert {"worker", "model", "gpu"} <= set(s.labels), s
    assert sample_value(fams, "llmq_jobs", "llmq_jobs_total", status="ok") == 5
    assert sample_value(fams, "llmq_jobs", "llmq_jobs_total", status="invalid_field") == 1
    assert sample_value(fams, "llmq_tokens_generated", "llmq_tokens_generated_total") == 30
    assert sample_value(fams, "llmq_chunks_published", "llmq_chunks_published_total") == 30
    assert sample_value(fams, "llmq_dead_letters", "llmq_dead_letters_total") == 1
    assert sample_value(fams, "llmq_llama_up") == 1
    assert sample_value(fams, "llmq_llama_slots_total") == 4
    assert sample_value(fams, "llmq_jobs_in_flight") == 0
    for h in ("llmq_queue_wait_seconds", "llmq_time_to_first_token_seconds",
              "llmq_job_duration_seconds"):
        assert fams[h].type == "histogram"
        assert sample_value(fams, h, h + "_count") == 5
    assert sample_value(fams, "llmq_gpu_info", backend="none") == 1
    assert "llmq_gpu_vram_used_bytes" not in fams  # unknown on a machine without a GPU

    status, _, body = get(base + "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, _, body = get(base + "/readyz")
    assert status == 200 and json.loads(body)["ready"] is True
    assert get(base + "/nope")[0] == 404


def test_consumer_lag_is_reported(kafka, topics, start_worker):
    w = start_worker(**{"metrics.listen": '"127.0.0.1:0"', "llama.slots": "1"})
    base = metrics_url(w)
    # Lag appears once librdkafka's statistics (every 5 s by default) arrive.
    replies = Replies(kafka, topics["replies"])
    jobs = [job(f"lag {i}", max_tokens=64) for i in range(8)]
    kafka.submit(topics["jobs"], *jobs)
    deadline = time.time() + 30
    while time.time() < deadline:
        fams = families(get(base + "/metrics")[2])
        if "llmq_kafka_consumer_lag" in fams:
            break
        time.sleep(0.5)
    assert "llmq_kafka_consumer_lag" in fams
    topics_seen = {s.labels["topic"] for s in fams["llmq_kafka_consumer_lag"].samples}
    assert topics_seen == {topics["jobs"]}
    replies.wait_terminal([j["id"] for j in jobs], timeout=120)


def test_readiness_follows_llama_server(kafka, topics, start_worker):
    # The fake takes 3 s to "load"; readiness must wait for it, drop when the
    # child dies, and come back after the supervisor restarts it.
    w = start_worker(wait_ready=False, **{
        "metrics.listen": '"127.0.0.1:0"',
        "llama.binary": f'"{FAKE}"',
        "llama.extra_args": '["--fake-load-s", "3"]',
    })
    base = metrics_url(w)
    status, _, body = get(base + "/readyz")
    assert status == 503 and json.loads(body)["ready"] is False
    assert get(base + "/healthz")[0] == 200  # alive while not ready
    deadline = time.time() + 30
    while time.time() < deadline and get(base + "/readyz")[0] != 200:
        time.sleep(0.2)
    assert get(base + "/readyz")[0] == 200

    child = subprocess.run(["pgrep", "-P", str(w.proc.pid)], capture_output=True, text=True)
    pid = int(child.stdout.split()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 10
    while time.time() < deadline and get(base + "/readyz")[0] == 200:
        time.sleep(0.05)
    status, _, body = get(base + "/readyz")
    assert status == 503, body
    fams = families(get(base + "/metrics")[2])
    assert sample_value(fams, "llmq_llama_up") == 0
    deadline = time.time() + 30
    while time.time() < deadline and get(base + "/readyz")[0] != 200:
        time.sleep(0.2)
    assert get(base + "/readyz")[0] == 200
    fams = families(get(base + "/metrics")[2])
    assert sample_value(fams, "llmq_llama_restarts", "llmq_llama_restarts_total") == 1


def test_heartbeats_match_their_schema(kafka, topics, start_worker):
    w = start_worker(**{"metrics.heartbeat_s": "1"})
    schema = json.loads((ROOT / "schemas/json/heartbeat.schema.json").read_text())
    consumer = kafka.consumer(topics["metrics"])
    beats = []
    deadline = time.time() + 20
    while time.time() < deadline and len(beats) < 3:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        beats.append((msg, msgpack.unpackb(msg.value())))
    consumer.close()
    assert len(beats) >= 3, f"only {len(beats)} heartbeat(s) in 20 s"
    for msg, hb in beats:
        jsonschema.validate(hb, schema)
        assert msg.key().decode() == hb["worker"]
        assert dict(msg.headers())["llmq-type"] == b"heartbeat"
        assert hb["gpu"]["backend"] == "none"
        assert hb["slots_total"] == 4
    assert beats[-1][1]["state"] == "ready"
    assert beats[-1][1]["ts_ms"] > beats[0][1]["ts_ms"]
