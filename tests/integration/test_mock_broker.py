"""test_mock_broker.py — the test aid tests/tools/mock_broker.c (librdkafka's mock
cluster, for machines without Java, such as the GPU device check) serves the worker
and the llmq CLI unchanged: a real llama-server with the tiny model behind a worker,
`llmq batch` and `llmq submit` against the mock's bootstrap address. The suite's
other tests keep the real broker."""

import json
import subprocess
import uuid

from llmq_harness import Worker


def test_worker_and_cli_on_the_mock_broker(tmp_path, build_dir, llama_server_bin, tiny_model):
    tag = uuid.uuid4().hex[:6]
    topics = {k: f"mock.{k}.{tag}" for k in ("jobs", "replies", "dead", "metrics")}
    broker = subprocess.Popen([str(build_dir / "mock_broker"), "--partitions", "2", *topics.values()],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker = None
    try:
        line = broker.stdout.readline().strip()
        assert line.startswith("bootstrap=127.0.0.1:"), (line, broker.stderr.read())
        bootstrap = line.split("=", 1)[1]
        worker = Worker(tmp_path / "w", build_dir, bootstrap, topics, llama_server_bin,
                        tiny_model, {})
        worker.start()
        worker.wait_log("assigned", timeout=60)

        jobs = tmp_path / "jobs.jsonl"
        jobs.write_text("".join(json.dumps({"prompt": f"mock {i}", "max_tokens": 8}) + "\n"
                                for i in range(12)))
        cli = [str(build_dir / "llmq"), "-b", bootstrap, "--jobs-topic", topics["jobs"],
               "--reply-topic", topics["replies"]]
        out = subprocess.run([*cli, "batch", "--timeout", "60", str(jobs)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        results = [json.loads(r) for r in out.stdout.splitlines()]
        assert sorted(r["line"] for r in results) == list(range(1, 13))
        assert all(r["status"] == "done" and r["usage"]["completion_tokens"] == 8 for r in results)

        one = subprocess.run([*cli, "submit", "--max-tokens", "4", "hello"],
                             capture_output=True, text=True, timeout=60)
        assert one.returncode == 0, one.stderr
        assert one.stdout.strip()
    finally:
        if worker:
            worker.stop()
        broker.terminate()
        assert broker.wait(timeout=10) == 0
