"""test_java_client.py — the Java client library (schemas/java) against the real broker and a
real llmq-worker with the tiny model. A small Java program (ClientCheck, in the library's test
sources) checks that a missing reply topic is refused, submits a job, streams one, checks that rejected jobs raise their typed errors
(model_mismatch, expired, and a job refused before sending), runs a batch of 100 through
submitMany/collect, and sends a cancel, which this test then reads off the control topic.

The library is built once: tests/contract.sh builds it (schemas/java/build.sh); this test
builds it only when its classes are missing or older than its sources."""
import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

from llmq_harness import ROOT

sys.path.insert(0, str(ROOT / "schemas" / "python"))
from llmq.codec import _unpack  # noqa: E402  (the reference reader, for the cancel's bytes)

JAVA = ROOT / "schemas" / "java"
BATCH = 100


def _stale():
    """Whether the built classes are missing or older than their sources or the pom (Maven
    recompiles a whole source tree when one of its files changed)."""
    stamp = JAVA / "target" / "classpath.txt"
    built = {"main": JAVA / "target" / "classes" / "dev" / "llmq" / "LlmqClient.class",
             "test": JAVA / "target" / "test-classes" / "dev" / "llmq" / "it" / "ClientCheck.class"}
    if not stamp.exists() or not all(p.exists() for p in built.values()):
        return True
    for tree, cls in built.items():
        sources = [JAVA / "pom.xml", *(JAVA / "src" / tree).rglob("*.java")]
        if any(p.stat().st_mtime > cls.stat().st_mtime for p in sources):
            return True
    return False


@pytest.fixture(scope="session")
def java_classpath():
    for tool in ("java", "mvn", "javac"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} missing: deploy/local/deps.sh installs a JDK 17 and Maven",
                        pytrace=False)
    if _stale():
        t0 = time.time()
        r = subprocess.run(["bash", str(JAVA / "build.sh"), "--no-tests"], capture_output=True,
                           text=True, timeout=900)
        assert r.returncode == 0, f"schemas/java/build.sh failed:\n{r.stdout}\n{r.stderr}"
        print(f"built schemas/java in {time.time() - t0:.1f} s")
    deps = (JAVA / "target" / "classpath.txt").read_text().strip()
    return os.pathsep.join([str(JAVA / "target" / "classes"),
                            str(JAVA / "target" / "test-classes"), deps])


def test_java_client_against_a_real_worker(java_classpath, kafka, topics, start_worker,
                                            bootstrap):
    control = topics["jobs"].replace(".jobs", ".control")
    kafka.create_topic(control, 1)
    start_worker()
    r = subprocess.run(["java", "-cp", java_classpath, "dev.llmq.it.ClientCheck", bootstrap,
                        topics["jobs"], topics["replies"], control, str(BATCH)],
                       capture_output=True, text=True, timeout=420)
    lines = r.stdout.splitlines()
    assert r.returncode == 0, f"ClientCheck failed (exit {r.returncode}):\n{r.stdout}\n{r.stderr[-4000:]}"
    steps = [ln.split()[1] for ln in lines if ln.startswith("ok ")]
    assert steps == ["missing-reply-topic", "submit", "stream", "rejected", "batch", "cancel"], lines

    # The cancel reached the control topic as spec.md says: keyed by the id, with headers.
    cancel_id = lines[-1].split()[2]
    consumer = kafka.consumer(control)
    try:
        deadline = time.time() + 30
        msg = None
        while time.time() < deadline and msg is None:
            m = consumer.poll(0.5)
            if m is not None and not m.error():
                msg = m
    finally:
        consumer.close()
    assert msg is not None, "no cancel message on the control topic"
    assert msg.key() == cancel_id.encode()
    assert dict(msg.headers()) == {"llmq-type": b"cancel", "llmq-id": cancel_id.encode()}
    assert list(_unpack(msg.value()).items()) == [
        ("v", 1), ("type", "cancel"), ("id", cancel_id), ("reason", "integration test")]
    print("\n".join(lines))
