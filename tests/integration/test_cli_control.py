"""test_cli_control.py — the `llmq` CLI fails fast and stops when asked:
every command exits 4 within --connect-timeout when no broker answers, and
SIGINT / SIGTERM stop it at once (130 / 143). Also `llmq cancel` (a v1 cancel
on the control topic, read back here), the steering flags of submit and
batch (--lane, --logprobs, --lora, --chunk-ms) as they land on the jobs
topics, and batch's Ctrl-C, which cancels what it sent. No worker is needed:
what workers do with cancels is tested with the worker."""
import signal
import socket
import subprocess
import time
import uuid

import msgpack
import pytest

from llmq_harness import ROOT
from test_python_steering import drain
from test_cli import jobs_sent, llmq, read_jsonl, write_jsonl  # noqa: F401 (llmq: a fixture)

COMMANDS = {  # each command with the arguments it needs, as a new user would type it
    "submit": ["submit", "Hello"],
    "tail": ["tail"],
    "batch": ["batch", "{input}"],
    "cancel": ["cancel", "job-1"],
}


@pytest.fixture
def dead_broker():
    """host:port of a loopback port nobody listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"127.0.0.1:{port}"


@pytest.fixture
def control(kafka, topics):
    """A fresh control topic (one partition, as spec.md advises)."""
    name = f"t{uuid.uuid4().hex[:8]}.control"
    kafka.create_topic(name, 1)
    return name


def argv(name, tmp_path):
    path = tmp_path / "in.jsonl"
    if not path.exists():
        write_jsonl(path, [{"prompt": f"Job {n}", "max_tokens": 3} for n in range(3)])
    return [a.format(input=path) for a in COMMANDS[name]]


def messages(kafka, topic, count, timeout=30):
    """The first `count` messages of `topic` as (key, headers, decoded value)."""
    return [(msg.key().decode(), dict(msg.headers() or []), msgpack.unpackb(msg.value(), raw=False))
            for msg in drain(kafka, topic, count, timeout)]


def stop_after(proc, delay, sig):
    """Send `sig` after `delay` s; returns (exit code, seconds from signal to exit, stderr)."""
    time.sleep(delay)
    assert proc.poll() is None, proc.communicate()
    sent = time.time()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, time.time() - sent, err


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_unreachable_broker_exits_4_within_connect_timeout(name, llmq, dead_broker, tmp_path):
    started = time.time()
    r = llmq(*argv(name, tmp_path), "--connect-timeout", "2", brokers=dead_broker, timeout=30)
    elapsed = time.time() - started
    assert r.returncode == 4, (r.returncode, r.stderr)
    assert 1.9 < elapsed < 4, elapsed
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"llmq {name}: no Kafka broker answered at {dead_broker} "
                               "within 2 s (--connect-timeout): "), lines[0]
    assert "Connection refused" in lines[0]


def test_default_connect_timeout_is_10_s(llmq, dead_broker):
    started = time.time()
    r = llmq("submit", "Hello", brokers=dead_broker, timeout=60)
    elapsed = time.time() - started
    assert r.returncode == 4 and "within 10 s" in r.stderr, r.stderr
    assert 9.9 < elapsed < 12, elapsed


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_signal_while_connecting_stops_at_once(name, sig, code, llmq, dead_broker, tmp_path):
    proc = subprocess.Popen(llmq.command(*argv(name, tmp_path), brokers=dead_broker),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rc, after, err = stop_after(proc, 1.5, sig)
    assert rc == code, (rc, err)
    assert after < 1, after


def test_signal_while_waiting_stops_at_once(llmq, tmp_path):
    """With the broker up and no worker: submit waits for a reply, tail for
    replies; both stop at once."""
    for args, sig, code in [(["submit", "--timeout", "60", "Hello"], signal.SIGINT, 130),
                            (["submit", "--timeout", "60", "Hello"], signal.SIGTERM, 143),
                            (["tail"], signal.SIGINT, 130), (["tail"], signal.SIGTERM, 143)]:
        proc = subprocess.Popen(llmq.command(*args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        rc, after, err = stop_after(proc, 3, sig)
        assert (rc, after < 1) == (code, True), (args, sig, rc, after, err)


def test_cancel_lands_on_control_topic(llmq, kafka, control):
    r = llmq("--control-topic", control, "cancel", "job-1", "--reason", "changed my mind")
    assert r.returncode == 0, r.stderr
    assert f"1 cancel(s) sent to {control}" in r.stderr
    r = llmq("cancel", "--control-topic", control, "--run", "w1-000009", "job-é")
    assert r.returncode == 0, r.stderr
    r = llmq("cancel", "--control-topic", control, "job-2", "job-3")
    assert r.returncode == 0, r.stderr
    got = messages(kafka, control, 4)
    assert got == [
        ("job-1", {"llmq-type": b"cancel", "llmq-id": b"job-1"},
         {"v": 1, "type": "cancel", "id": "job-1", "reason": "changed my mind"}),
        ("job-é", {"llmq-type": b"cancel", "llmq-id": "job-é".encode()},
         {"v": 1, "type": "cancel", "id": "job-é", "run": "w1-000009"}),
        ("job-2", {"llmq-type": b"cancel", "llmq-id": b"job-2"},
         {"v": 1, "type": "cancel", "id": "job-2"}),
        ("job-3", {"llmq-type": b"cancel", "llmq-id": b"job-3"},
         {"v": 1, "type": "cancel", "id": "job-3"}),
    ]
    # The same bytes as the contract's vector for a run and a reason.
    r = llmq("cancel", "--control-topic", control, "--run", "w1-000009", "--reason",
             "user pressed Ctrl-C", "job-5")
    assert r.returncode == 0, r.stderr
    values = [msg.value() for msg in drain(kafka, control, 5)]
    assert values[4] == (ROOT / "schemas/vectors/cancel_run_reason.msgpack").read_bytes()


def test_cancel_usage_errors(llmq, control):
    for args, words in [((), "ID is missing"),
                        (("--run", "r1", "a", "b"), "one ID"),
                        (("x" * 129,), "id: must be at most 128 bytes"),
                        (("--run", "", "a"), "run: must not be empty"),
                        (("--control-topic", "bad topic", "a"), "not a Kafka topic name"),
                        (("--connect-timeout", "0", "a"), "--connect-timeout 0")]:
        r = llmq("cancel", *args)
        assert r.returncode == 2 and words in r.stderr, (args, r.stderr)
    r = llmq("cancel", "--control-topic", f"{control}.missing", "--connect-timeout", "3", "a")
    assert r.returncode == 4, r.stderr


def test_submit_steering_flags(llmq, kafka, topics):
    lane = topics["jobs"] + ".urgent"
    kafka.create_topic(lane, 2)
    r = llmq("submit", "--lane", lane, "--logprobs", "3", "--lora", "style:0.5",
             "--lora", "tiny-lora", "--chunk-ms", "0", "--id", "steer-1", "--timeout", "1",
             "Hello")
    assert r.returncode == 3, r.stderr  # no worker: no reply
    (key, _, job), = messages(kafka, lane, 1)
    assert key == "steer-1"
    assert (job["logprobs"], job["chunk_ms"]) == (3, 0)
    assert job["lora"] == [{"name": "style", "scale": 0.5}, {"name": "tiny-lora"}]
    for args, words in [(("--logprobs", "21"), "--logprobs 21: logprobs: must be an integer "
                         "between 0 and 20"),
                        (("--logprobs", "2.0"), "--logprobs 2.0: not an integer"),
                        (("--chunk-ms", "-1"), "chunk_ms: must be an integer between 0 and 60000"),
                        (("--chunk-ms", "60001"), "chunk_ms: must be an integer"),
                        (("--lora", "style:x"), "expected NAME or NAME:SCALE"),
                        (("--lora", ":1"), "lora[0].name: must be a non-empty string"),
                        (("--lora", "a", "--lora", "a:2"), 'lora[1].name: "a" given twice'),
                        (("--lane", "no such/topic"), "--lane no such/topic: not a Kafka topic")]:
        r = llmq("submit", *args, "Hello")
        assert r.returncode == 2 and words in r.stderr, (args, r.stderr)
    r = llmq("submit", *[a for n in range(17) for a in ("--lora", f"a{n}")], "Hello")
    assert r.returncode == 2 and "lora: must be an array of at most 16" in r.stderr, r.stderr


def test_batch_steering_defaults_and_line_checks(llmq, kafka, topics, tmp_path):
    lane = topics["jobs"] + ".bulk"
    kafka.create_topic(lane, 2)
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, [{"id": "b-1", "prompt": "one"},
                      {"id": "b-2", "prompt": "two", "logprobs": 0, "chunk_ms": 500},
                      {"id": "b-3", "prompt": "bad", "logprobs": 2.0},
                      {"id": "b-4", "prompt": "bad", "lora": [{"name": "x"}, {"name": "x"}]}])
    r = llmq("batch", "--lane", lane, "--logprobs", "5", "--chunk-ms", "20", "--timeout", "2",
             "-o", str(out), str(inp))
    assert r.returncode == 1, r.stderr
    results = {x["id"]: x for x in read_jsonl(out)}
    assert results["b-3"]["status"] == "invalid"
    assert results["b-3"]["message"].startswith("logprobs: must be an integer")
    assert results["b-4"]["message"] == 'lora[1].name: "x" given twice'  # the worker's words
    sent = {job["id"]: job for _, _, job in messages(kafka, lane, 2)}
    assert (sent["b-1"]["logprobs"], sent["b-1"]["chunk_ms"]) == (5, 20)
    assert (sent["b-2"]["logprobs"], sent["b-2"]["chunk_ms"]) == (0, 500)  # the line wins


def test_batch_interrupted_cancels_what_it_sent(llmq, kafka, topics, control, tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, [{"id": "own-1", "prompt": "Mine"}] +
                [{"prompt": f"Job {n}"} for n in range(4)])
    proc = subprocess.Popen(llmq.command("batch", "--control-topic", control, "-c", "3",
                                         "-o", str(out), str(inp)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rc, after, err = stop_after(proc, 4, signal.SIGINT)
    assert rc == 130 and after < 2, (rc, after, err)
    assert "interrupted: 3 job(s) cancelled on " + control in err
    results = read_jsonl(out)
    assert [x["status"] for x in results] == ["cancelled"] * 3
    assert sorted(x["line"] for x in results) == [1, 2, 3]  # lines 4 and 5 were not sent
    cancels = messages(kafka, control, 3)
    assert sorted(key for key, _, _ in cancels) == sorted(x["id"] for x in results)
    assert all(c == {"v": 1, "type": "cancel", "id": key, "reason": "llmq batch was interrupted"}
               for key, _, c in cancels)

    # Resuming: a line with its own cancelled id must get a new one; the
    # others go again under new ids (no worker: they time out).
    out2 = tmp_path / "out2.jsonl"
    r = llmq("batch", "--timeout", "2", "--retry-failed", str(out), "-o", str(out2), str(inp))
    assert r.returncode == 1, r.stderr
    res2 = {x["line"]: x for x in read_jsonl(out2)}
    assert res2[1]["status"] == "invalid" and "own-1 was cancelled" in res2[1]["message"]
    old = {x["line"]: x["id"] for x in results}
    assert [res2[n]["status"] for n in range(2, 6)] == ["timeout"] * 4
    assert all(res2[n]["id"] != old[n] for n in (2, 3))
    assert len(jobs_sent(kafka, topics["jobs"], 7)) == 7  # 3, then 4 again


def test_help_names_every_command_and_flag(llmq):
    r = llmq("--help")
    assert r.returncode == 0
    for words in ("cancel", "--connect-timeout", "130", "143"):
        assert words in r.stdout, words
    for cmd, flags in [("submit", ("--lane", "--logprobs", "--lora", "--chunk-ms")),
                       ("batch", ("--lane", "--logprobs", "--lora", "--chunk-ms", "cancelled")),
                       ("cancel", ("--run", "--reason", "--control-topic")),
                       ("tail", ("130",))]:
        r = llmq(cmd, "--help")
        assert r.returncode == 0, r.stderr
        for flag in flags:
            assert flag in r.stdout, (cmd, flag)
