"""test_rig.py — the rig itself works: the real broker round-trips a message
through librdkafka from C, and the real llama-server streams a completion with
the tiny model through libcurl (tests/tools/rig_smoke.c)."""
import re
import subprocess
import time
import uuid

import pytest


@pytest.fixture
def llama_server(llama_server_bin, tiny_model):
    proc = subprocess.Popen([llama_server_bin, "-m", tiny_model, "--host", "127.0.0.1",
                             "--port", "0", "-c", "2048", "--parallel", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
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
    import threading
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    import urllib.request
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url + "/health", timeout=2).status == 200:
                break
        except Exception:  # noqa: BLE001 - 503 while loading
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_kafka_roundtrip_from_c(kafka, build_dir):
    topic = f"rig-{uuid.uuid4().hex[:8]}"
    kafka.create_topic(topic, 1)
    out = subprocess.run([str(build_dir / "rig_smoke"), "kafka", kafka.bootstrap, topic],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "consumed it back" in out.stdout


def test_llama_stream_from_c(llama_server, build_dir):
    out = subprocess.run([str(build_dir / "rig_smoke"), "llama", llama_server],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "streamed" in out.stdout
    assert out.stdout.count("data:") >= 16  # one event per token, n_predict 16
