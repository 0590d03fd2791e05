"""test_cli.py — the `llmq` command-line tool (submit, tail, batch) against
the real broker, a real llmq-worker and llama-server with the tiny model."""
import json
from collections import Counter
import re
import signal
import subprocess
import time

import msgpack
import pytest

from llmq_harness import Replies


@pytest.fixture
def llmq(build_dir, bootstrap, topics):
    """llmq(*args, input=None, timeout=120) -> CompletedProcess, on this test's topics."""
    binary = build_dir / "llmq"
    if not binary.exists():
        pytest.fail(f"{binary} missing: build first (tests/run.sh does)", pytrace=False)

    def command(*args, brokers=bootstrap):
        return [str(binary), "-b", brokers, "--jobs-topic", topics["jobs"],
                "--reply-topic", topics["replies"], *args]

    def run(*args, input=None, timeout=120, brokers=bootstrap):
        return subprocess.run(command(*args, brokers=brokers), input=input, capture_output=True,
                              text=True, timeout=timeout)

    run.command = command
    return run


def jobs_sent(kafka, topic, expected, timeout=30):
    """The job maps on the jobs topic, once `expected` are there (and no more come)."""
    consumer = kafka.consumer(topic)
    found = []
    deadline = time.time() + timeout
    quiet_until = None
    while time.time() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and not msg.error():
            found.append(msgpack.unpackb(msg.value(), raw=False))
        if len(found) >= expected:
            quiet_until = quiet_until or time.time() + 1.5
            if time.time() > quiet_until:
                break
    consumer.close()
    return found


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_submit_streams_text_then_summary(kafka, topics, start_worker, llmq):
    start_worker()
    replies = Replies(kafka, topics["replies"])
    r = llmq("submit", "--id", "cli-stream-1", "--max-tokens", "12", "--seed", "7",
             "--meta", "trace=abc", "Once upon a time")
    assert r.returncode == 0, r.stderr
    done = replies.wait_terminal(["cli-stream-1"], timeout=30)["cli-stream-1"]
    assert done["type"] == "done" and done["meta"] == {"trace": "abc"}
    assert len(replies.chunks("cli-stream-1", done["run"])) > 1  # it was streamed
    assert r.stdout == done["text"] + "\n"
    assert re.search(r"done \(length\): 12 tokens \(prompt \d+\), [\d.]+ tokens/s, ttft [\d.]+ ms",
                     r.stderr), r.stderr

    # A chat job from standard input, with a system message.
    r = llmq("submit", "--system", "Be brief.", "--max-tokens", "5", "-", input="Say hello.")
    assert r.returncode == 0, r.stderr
    assert "done (length): 5 tokens" in r.stderr


def test_submit_no_stream(kafka, topics, start_worker, llmq):
    start_worker()
    replies = Replies(kafka, topics["replies"])
    r = llmq("submit", "--no-stream", "--id", "cli-nostream", "--max-tokens", "6", "Hello")
    assert r.returncode == 0, r.stderr
    done = replies.wait_terminal(["cli-nostream"], timeout=30)["cli-nostream"]
    assert replies.chunks("cli-nostream", done["run"]) == []
    assert r.stdout == done["text"] + "\n"


def test_submit_past_deadline_exits_1_expired(start_worker, llmq):
    start_worker()
    r = llmq("submit", "--deadline-ms", "1", "--timeout", "60", "Hello")
    assert r.returncode == 1, r.stderr
    assert "error expired:" in r.stderr
    r = llmq("submit", "--ttl-ms", "-1000", "--timeout", "60", "Hello")
    assert r.returncode == 1 and "expired" in r.stderr, r.stderr


def test_submit_timeout_without_worker_exits_3(llmq):
    started = time.time()
    r = llmq("submit", "--timeout", "2", "Hello")
    assert r.returncode == 3, r.stderr
    assert time.time() - started < 10
    assert "no terminal reply" in r.stderr


def test_submit_dead_broker_fails_fast(llmq):
    started = time.time()
    r = llmq("submit", "--connect-timeout", "3", "Hello", brokers="127.0.0.1:1")
    assert r.returncode == 4, (r.returncode, r.stderr)
    assert time.time() - started < 6
    assert "no Kafka broker answered at 127.0.0.1:1 within 3 s" in r.stderr


def test_submit_invalid_job_is_not_sent(llmq):
    r = llmq("submit", "--temperature", "-1", "Hello")
    assert r.returncode == 2
    assert "temperature: must be a number >= 0" in r.stderr
    r = llmq("submit", "--max-tokens", "many", "Hello")
    assert r.returncode == 2 and "--max-tokens" in r.stderr
    assert llmq("submit").returncode == 2
    assert llmq("submit", "--help").returncode == 0


def test_tail(kafka, topics, start_worker, llmq):
    # One chunk per token, so that the 4-token job below makes 4 chunks.
    start_worker(**{"chunking.coalesce_ms": "0"})
    # From the end: started first, it sees the job submitted after it.
    tail = subprocess.Popen(llmq.command("tail", "--type", "done", "--count", "1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # let it take the end offsets
    r = llmq("submit", "--id", "cli-tail-1", "--max-tokens", "4", "Hi")
    assert r.returncode == 0, r.stderr
    out, err = tail.communicate(timeout=60)
    assert tail.returncode == 0, err
    assert re.fullmatch(r'cli-tail-1 run=\w+ done length 4 tokens ".*"\n', out), out

    # From the beginning: the chunks, in order, then the done reply.
    r = llmq("tail", "--from-beginning", "--id", "cli-tail-1", "--count", "5", timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 5
    for seq, line in enumerate(lines[:4]):
        assert re.fullmatch(rf'cli-tail-1 run=\w+ chunk #{seq} ".*"', line), line
    assert " done length 4 tokens " in lines[4]

    r = llmq("tail", "--from-beginning", "--type", "done", "--json", "--count", "1", timeout=60)
    assert r.returncode == 0, r.stderr
    reply = json.loads(r.stdout)
    assert reply["type"] == "done" and reply["id"] == "cli-tail-1"
    assert set(reply["usage"]) == {"prompt_tokens", "completion_tokens"}

    # Without --count it runs until SIGINT, then exits 130.
    tail = subprocess.Popen(llmq.command("tail"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(1)
    tail.send_signal(signal.SIGINT)
    tail.communicate(timeout=10)
    assert tail.returncode == 130


def test_batch_twenty_jobs(kafka, topics, start_worker, llmq, tmp_path):
    start_worker()
    rows = []
    for n in range(20):
        row = {"max_tokens": 4 + n % 3, "seed": n, "meta": {"n": n}}
        if n % 2:
            row["messages"] = [{"role": "user", "content": f"Question {n}?"}]
        else:
            row["prompt"] = f"Story number {n}:"
        if n % 5 == 0:
            row["id"] = f"given-{n}"
        rows.append(row)
    write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    r = llmq("batch", "--concurrency", "4", "-o", str(out), str(tmp_path / "in.jsonl"))
    assert r.returncode == 0, r.stderr
    results = read_jsonl(out)
    assert len(results) == 20
    assert sorted(x["line"] for x in results) == list(range(1, 21))
    assert len({x["id"] for x in results}) == 20
    for x in results:
        n = x["line"] - 1
        assert x["status"] == "done", x
        assert x["usage"]["completion_tokens"] == 4 + n % 3
        assert x["meta"] == {"n": n}
        assert x["run"] and x["finish"] == "length" and isinstance(x["text"], str)
        if n % 5 == 0:
            assert x["id"] == f"given-{n}"
        else:
            assert re.fullmatch(rf"batch-{n + 1}-[0-9a-f]{{16}}", x["id"]), x["id"]
    assert "20 job(s): 20 done" in r.stderr


def test_batch_retry_failed_resends_only_the_failed(kafka, topics, start_worker, llmq, tmp_path):
    start_worker()
    good = [{"prompt": f"Good {n}", "max_tokens": 3} for n in range(4)]
    first = good + [
        {"id": "late", "prompt": "Late", "deadline_ms": 1},       # expired: retried
        {"prompt": "Elsewhere", "model": "not-this-one"},          # model_mismatch: retryable
        {"prompt": "Hot", "temperature": -1},                      # invalid: checked again
        "{not json",                                               # invalid: checked again
    ]
    inp = tmp_path / "in.jsonl"
    out1 = tmp_path / "out1.jsonl"
    write_jsonl(inp, first)
    r = llmq("batch", "-o", str(out1), str(inp))
    assert r.returncode == 1, r.stderr
    res1 = {x["line"]: x for x in read_jsonl(out1)}
    assert [res1[n]["status"] for n in range(1, 9)] == ["done"] * 4 + ["error", "error",
                                                                       "invalid", "invalid"]
    assert res1[5]["code"] == "expired" and res1[6]["code"] == "model_mismatch"
    assert res1[7]["code"] == "invalid_field" and "temperature" in res1[7]["message"]
    assert res1[8]["code"] == "malformed"
    assert re.search(r"in\.jsonl:7: invalid job \(invalid_field\): temperature", r.stderr)
    assert len(jobs_sent(kafka, topics["jobs"], 6)) == 6  # invalid lines are not sent

    # Fix the failed lines (ids unchanged) and retry: only those four are sent.
    fixed = good + [{"id": "late", "prompt": "Late", "max_tokens": 3},
                    {"prompt": "Elsewhere", "max_tokens": 3},
                    {"prompt": "Hot", "temperature": 0.5, "max_tokens": 3},
                    {"prompt": "Was not JSON", "max_tokens": 3}]
    write_jsonl(inp, fixed)
    out2 = tmp_path / "out2.jsonl"
    r = llmq("batch", "--retry-failed", str(out1), "-o", str(out2), str(inp))
    assert r.returncode == 0, r.stderr
    res2 = read_jsonl(out2)
    assert len(res2) == 8
    assert res2[:4] == [res1[n] for n in range(1, 5)]  # carried over, unchanged
    assert all(x["status"] == "done" for x in res2)
    by_line = {x["line"]: x for x in res2}
    assert by_line[5]["id"] == "late"
    assert by_line[6]["id"] == res1[6]["id"]  # a generated id is kept
    # The jobs topic (4 partitions, so no global order): the good jobs once,
    # the retried ones twice when they were sent the first time too.
    sent = Counter(j["id"] for j in jobs_sent(kafka, topics["jobs"], 10))
    assert sent == Counter([res1[n]["id"] for n in range(1, 7)] +
                           [by_line[n]["id"] for n in range(5, 9)])


def test_batch_timeouts_then_retry(kafka, topics, start_worker, llmq, tmp_path):
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, [{"prompt": f"Job {n}", "max_tokens": 3} for n in range(3)])
    out1 = tmp_path / "out1.jsonl"
    r = llmq("batch", "--timeout", "2", "-o", str(out1), str(inp))  # no worker yet
    assert r.returncode == 1, r.stderr
    res1 = read_jsonl(out1)
    assert [x["status"] for x in res1] == ["timeout"] * 3

    # A retry that cannot reach Kafka leaves the results file alone.
    before = out1.read_text()
    r = llmq("batch", "--timeout", "2", "--retry-failed", str(out1), "-o", str(out1), str(inp),
             brokers="127.0.0.1:1")
    assert r.returncode == 4, r.stderr
    assert out1.read_text() == before

    # With a worker, the retry (into the same file) gets every job done, under the same ids.
    start_worker()
    r = llmq("batch", "--retry-failed", str(out1), "-o", str(out1), str(inp))
    assert r.returncode == 0, r.stderr
    res2 = read_jsonl(out1)
    assert sorted(x["id"] for x in res2) == sorted(x["id"] for x in res1)
    assert all(x["status"] == "done" for x in res2)
