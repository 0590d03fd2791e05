"""test_producer_libraries.py — the Go (schemas/go) and Node.js (schemas/node)
client libraries against the real broker and a real llmq-worker with the tiny
model. Each runs a small program of its library (schemas/go/cmd/llmq-check,
schemas/node/examples/llmq-check.js) that submits a job, streams one, gets a
job rejected by the worker (the typed error), has one refused before sending,
sends a batch of 100, and sends a cancel; the program prints one JSON object,
checked here, and the cancel is read back from the control topic.

The toolchains (go, node/npm) must be installed; their module caches live
under $LLMQ_CACHE (see tests/contract.sh, which fetches the dependencies)."""
import json
import os
import pathlib
import shutil
import subprocess

import msgpack
import pytest

from llmq_harness import ROOT

CACHE = pathlib.Path(os.environ.get("LLMQ_CACHE", pathlib.Path.home() / ".cache" / "llmq"))
BATCH = 100


def _tool(name):
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (deploy/local/deps.sh)", pytrace=False)
    return path


def _go_env():
    go = CACHE / "go"
    return dict(os.environ, GOPATH=str(go), GOMODCACHE=str(go / "mod"),
                GOCACHE=str(go / "build"), GOFLAGS="-mod=mod")


@pytest.fixture
def control_topic(kafka, topics):
    name = topics["jobs"].replace(".jobs", ".control")
    kafka.create_topic(name, 1)
    return name


def _run_check(cmd, cwd, env, bootstrap, topics, control):
    args = cmd + ["--brokers", bootstrap, "--jobs", topics["jobs"], "--replies",
                  topics["replies"], "--control", control, "--batch", str(BATCH)]
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, f"{args[0]} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{args[0]}: batch of {BATCH}: {out.get('batch')}")  # shown with pytest -s
    return out


def _check_results(out, kafka, control, worker):
    errors = {k: v["error"] for k, v in out.items() if isinstance(v, dict) and "error" in v}
    assert not errors, f"steps failed: {errors}\nworker log tail:\n{worker.log_text()[-2000:]}"

    done = out["submit"]
    assert done["text"] and done["finish"] == "length"
    assert done["usage"]["completion_tokens"] == 12
    assert done["meta"] == {"trace": "t-1"} and done["run"] and done["worker"]

    stream = out["stream"]
    assert stream["restarts"] == 0 and stream["pieces"] > 1
    assert stream["joined"] == stream["done"]["text"]
    assert stream["done"]["usage"]["completion_tokens"] == 24

    assert out["rejected"] == {"code": "model_mismatch", "retryable": True, "run": "",
                               "is_rejected": True, "is_expired": False}
    assert out["invalid"] == {"code": "invalid_field", "field": "temperature"}

    batch = out["batch"]
    assert batch["done"] == BATCH and batch["meta_in_order"], batch

    consumer = kafka.consumer(control)
    try:
        msg = None
        for _ in range(50):
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                break
        assert msg is not None and not msg.error(), "no cancel on the control topic"
        cancel = msgpack.unpackb(msg.value(), raw=False)
        assert msg.key() == out["cancel"]["sent"].encode()
        assert cancel["v"] == 1 and cancel["type"] == "cancel"
        assert cancel["id"] == out["cancel"]["sent"]
    finally:
        consumer.close()


def test_go_client(kafka, bootstrap, topics, control_topic, start_worker, tmp_path):
    _tool("go")
    env = _go_env()
    binary = tmp_path / "llmq-check"
    build = subprocess.run(["go", "build", "-o", str(binary), "./cmd/llmq-check"],
                           cwd=ROOT / "schemas" / "go", env=env, capture_output=True, text=True,
                           timeout=300)
    assert build.returncode == 0, build.stderr
    worker = start_worker()
    out = _run_check([str(binary)], ROOT / "schemas" / "go", env, bootstrap, topics,
                     control_topic)
    _check_results(out, kafka, control_topic, worker)


def test_node_client(kafka, bootstrap, topics, control_topic, start_worker):
    _tool("node")
    node_dir = ROOT / "schemas" / "node"
    if not (node_dir / "node_modules" / "@platformatic" / "kafka").is_dir():
        env = dict(os.environ, npm_config_cache=str(CACHE / "npm"))
        npm = subprocess.run([_tool("npm"), "ci", "--omit=optional", "--no-audit", "--no-fund"],
                             cwd=node_dir, env=env, capture_output=True, text=True, timeout=300)
        assert npm.returncode == 0, npm.stderr
    worker = start_worker()
    out = _run_check(["node", "examples/llmq-check.js"], node_dir, dict(os.environ), bootstrap,
                     topics, control_topic)
    _check_results(out, kafka, control_topic, worker)
