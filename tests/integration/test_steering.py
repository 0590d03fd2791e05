"""test_steering.py — issue 13 on the real broker and a real llama-server with
the tiny model: cancels over the control topic (running, before consumption,
behind a running job, unknown), deadlines that reach llama-server and end in
`expired` with partial_text, logprobs in chunks and done, and priority lanes.

llama-server runs outside the worker here (llama.url), so the test can read
its /slots: a cancelled run must free its slot within 1 s.

LLMQ_CANCEL_ROUNDS (default 10) sets how many running jobs the latency test
cancels; FINDINGS.md's numbers are from 100."""
import json
import os
import socket
import statistics
import subprocess
import time
import urllib.request
import uuid

import msgpack
import pytest

from llmq_harness import Replies, job


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


@pytest.fixture
def llama(llama_server_bin, tiny_model, tmp_path):
    """An external llama-server with one slot; yields its base URL."""
    port = free_port()
    log = open(tmp_path / "llama.log", "w")
    proc = subprocess.Popen([llama_server_bin, "-m", tiny_model, "--host", "127.0.0.1",
                             "--port", str(port), "--parallel", "1", "-c", "4096"],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if get_json(url + "/health").get("status") == "ok":
                break
        except OSError:
            pass
        assert proc.poll() is None, "llama-server exited"
        time.sleep(0.2)
    else:
        pytest.fail("llama-server not healthy in 60 s")
    yield url
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


@pytest.fixture
def control(kafka, topics):
    name = topics["jobs"].replace(".jobs", ".control")
    kafka.create_topic(name, 1)
    return name


def cancel(kafka, control_topic, job_id, run=None, reason=None):
    msg = {"v": 1, "type": "cancel", "id": job_id}
    if run:
        msg["run"] = run
    if reason:
        msg["reason"] = reason
    kafka.producer.produce(control_topic, key=job_id.encode(), value=msgpack.packb(msg),
                           headers=[("llmq-type", b"cancel"), ("llmq-id", job_id.encode())])
    kafka.producer.flush(10)


def slot_busy(url):
    return any(s.get("is_processing") for s in get_json(url + "/slots"))


def steering_worker(start_worker, llama, control, **extra):
    settings = {"llama.url": f'"{llama}"', "llama.slots": "1", "kafka.control_topic": f'"{control}"',
                "limits.max_tokens": "4000", "metrics.listen": '"127.0.0.1:0"'}
    settings.update(extra)
    return start_worker(**settings)


def metrics_text(w):
    w.wait_log("metrics on", timeout=10)
    port = int(w.log_text().split("metrics on ")[1].split("(port ")[1].split(")")[0])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def test_cancel_running_frees_the_slot(kafka, topics, control, start_worker, llama):
    steering_worker(start_worker, llama, control)
    replies_topic = topics["replies"]
    replies = Replies(kafka, replies_topic)
    latencies = []
    try:
        for k in range(int(os.environ.get("LLMQ_CANCEL_ROUNDS", "10"))):
            jid = f"run-{k}-{uuid.uuid4().hex[:6]}"
            kafka.submit(topics["jobs"], job("Once upon a time", id=jid, max_tokens=4000))
            assert replies.poll_until(lambda r: any(x["type"] == "chunk" for x in r.by_id.get(jid, [])),
                                      60), "no chunk"
            assert slot_busy(llama)
            # From the broker's ack of the cancel: the produce itself stalled
            # for 0.3-0.6 s now and then (the worker read each cancel within
            # ms of its ack; FINDINGS, "Steering in the worker").
            cancel(kafka, control, jid, reason="stop it")
            t0 = time.monotonic()
            while slot_busy(llama):
                assert time.monotonic() - t0 < 5, "slot still busy after 5 s"
                time.sleep(0.005)
            latencies.append(time.monotonic() - t0)
            end = replies.wait_terminal([jid], timeout=30)[jid]
            assert end["type"] == "error" and end["code"] == "cancelled", end
            assert end["retryable"] is False and end["message"] == "cancelled: stop it"
            chunks = "".join(c["text"] for c in sorted(replies.chunks(jid, end["run"]),
                                                        key=lambda c: c["seq"]))
            assert end["partial_text"].startswith(chunks) and end["run"]
    finally:
        replies.close()
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    print(f"\ncancel acked -> slot free over {len(latencies)} cancels: p50 {p50*1000:.1f} ms, "
          f"p99 {p99*1000:.1f} ms, max {latencies[-1]*1000:.1f} ms")
    # A cancel frees the slot at once, not when the 4,000-token job would have
    # ended (~2.6 s at the tiny model's 1,500 tokens/s): the median says so.
    # llama-server itself takes up to ~0.4 s now and then to free the slot.
    assert p50 < 0.5 and latencies[-1] < 2.5


def test_cancel_before_consumption_and_behind_a_running_job(kafka, topics, control, start_worker,
                                                             llama):
    w = steering_worker(start_worker, llama, control)
    replies = Replies(kafka, topics["replies"])
    try:
        # Before consumption: the cancel comes first, the job after it.
        cancel(kafka, control, "early-1")
        time.sleep(1.0)
        kafka.submit(topics["jobs"], job("x", id="early-1", max_tokens=8, meta={"k": 1}))
        early = replies.wait_terminal(["early-1"], timeout=30)["early-1"]
        assert (early["type"], early["code"], early["run"]) == ("error", "cancelled", "")
        assert "partial_text" not in early and early["meta"] == {"k": 1}
        # Behind a running job (one slot): the second is cancelled while it waits.
        kafka.submit(topics["jobs"], job("a", id="long-1", max_tokens=3000))
        assert replies.poll_until(lambda r: r.by_id.get("long-1"), 60)
        kafka.submit(topics["jobs"], job("b", id="waiting-1", max_tokens=8))
        cancel(kafka, control, "waiting-1", reason="no longer needed")
        # Unknown id and a run that is not running: counted, nothing else.
        cancel(kafka, control, "nobody-" + uuid.uuid4().hex[:6])
        cancel(kafka, control, "long-1", run="not-this-run")
        kafka.producer.produce(control, key=b"x", value=b"\xc1")
        kafka.producer.flush(10)
        ends = replies.wait_terminal(["long-1", "waiting-1"], timeout=120)
        assert ends["long-1"]["type"] == "done"
        assert ends["waiting-1"]["code"] == "cancelled" and ends["waiting-1"]["run"] == ""
        assert ends["waiting-1"]["message"] == "cancelled: no longer needed"
        # The worker still serves jobs.
        kafka.submit(topics["jobs"], job("c", id="after-1", max_tokens=4))
        assert replies.wait_terminal(["after-1"], timeout=60)["after-1"]["type"] == "done"
    finally:
        replies.close()
    page = metrics_text(w)
    assert 'llmq_jobs_cancelled_total{' in page
    def value(name, label):
        line = next(l for l in page.splitlines() if l.startswith(name) and label in l)
        return float(line.rsplit(" ", 1)[1])
    assert value("llmq_jobs_cancelled_total", 'state="on_arrival"') == 2
    assert value("llmq_cancels_received_total", 'result="run_mismatch"') == 1
    assert value("llmq_cancels_received_total", 'result="invalid"') == 1
    assert value("llmq_cancels_received_total", 'result="not_here"') >= 3
    assert value("llmq_jobs_total", 'status="cancelled"') == 2


def test_missing_control_topic_does_not_stop_jobs(kafka, topics, start_worker, llama):
    w = start_worker(**{"llama.url": f'"{llama}"', "llama.slots": "1",
                        "kafka.control_topic": '"no.such.control.topic"',
                        "metrics.listen": '"127.0.0.1:0"'})
    w.wait_log("control topic no.such.control.topic missing", timeout=30)
    replies = Replies(kafka, topics["replies"])
    try:
        kafka.submit(topics["jobs"], job("x", id="served-1", max_tokens=4))
        assert replies.wait_terminal(["served-1"], timeout=60)["served-1"]["type"] == "done"
    finally:
        replies.close()


def test_deadline_reaches_llama_server_and_expires_with_partial_text(kafka, topics, control,
                                                                    start_worker, llama):
    steering_worker(start_worker, llama, control)
    replies = Replies(kafka, topics["replies"])
    try:
        # A first job, so the deadline is not spent on the worker's first fetch.
        kafka.submit(topics["jobs"], job("warm", id="warm-1", max_tokens=200))
        warm = replies.wait_terminal(["warm-1"], timeout=60)["warm-1"]
        print("\nwarm-up", warm["timings"])
        deadline = int(time.time() * 1000) + 1500
        kafka.submit(topics["jobs"], job("Once", id="dl-1", max_tokens=4000, deadline_ms=deadline))
        end = replies.wait_terminal(["dl-1"], timeout=60)["dl-1"]
        assert end["type"] == "error" and end["code"] == "expired", end
        assert end["run"] and end["partial_text"], (end, end["message"])
        chunks = "".join(c["text"] for c in sorted(replies.chunks("dl-1", end["run"]),
                                                    key=lambda c: c["seq"]))
        assert end["partial_text"].startswith(chunks)
        t0 = time.monotonic()
        while slot_busy(llama):
            assert time.monotonic() - t0 < 1.0, ("slot busy 1 s after the deadline reply",
                                                 get_json(llama + "/slots"), len(end["partial_text"]))
            time.sleep(0.01)
    finally:
        replies.close()


def test_logprobs_of_chunks_join_to_the_done(kafka, topics, control, start_worker, llama):
    steering_worker(start_worker, llama, control)
    replies = Replies(kafka, topics["replies"])
    try:
        kafka.submit(topics["jobs"], job("Hello", id="lp-1", max_tokens=24, logprobs=3, chunk_ms=0),
                     job("Hello", id="lp-2", max_tokens=24, logprobs=2, chunk_ms=200,
                         messages=None))
        ends = replies.wait_terminal(["lp-1", "lp-2"], timeout=60)
        for jid, n in (("lp-1", 3), ("lp-2", 2)):
            done = ends[jid]
            assert done["type"] == "done", done
            lps = done["logprobs"]
            assert len(lps) == done["usage"]["completion_tokens"] == 24
            for token, logprob, top in lps:
                assert isinstance(token, (str, bytes)) and logprob <= 0 and len(top) == n
            chunks = sorted(replies.chunks(jid, done["run"]), key=lambda c: c["seq"])
            joined = [e for c in chunks for e in c["logprobs"]]
            assert joined == lps
            assert sum(e[1] for e in joined) == pytest.approx(sum(e[1] for e in lps))
            text = b"".join(t if isinstance(t, bytes) else t.encode() for t, _, _ in lps)
            assert text.decode() == done["text"]
        # chunk_ms 0: a chunk per token; 200 ms: merged.
        assert len(replies.chunks("lp-1", ends["lp-1"]["run"])) >= 20
        assert len(replies.chunks("lp-2", ends["lp-2"]["run"])) < 20
    finally:
        replies.close()


def test_lanes_start_order_follows_the_weights(kafka, topics, start_worker, llama):
    high, low = topics["jobs"] + ".high", topics["jobs"] + ".low"
    kafka.create_topic(high, 1)
    kafka.create_topic(low, 1)
    n_high, n_low = 200, 80
    for k in range(n_high):
        kafka.submit(high, job("h", id=f"high-{k:03d}", max_tokens=8))
    for k in range(n_low):
        kafka.submit(low, job("l", id=f"low-{k:03d}", max_tokens=8))
    kafka.producer.flush(10)
    w = start_worker(**{"llama.url": f'"{llama}"', "llama.slots": "1",
                        "kafka.jobs_topics": f'["{high}", "{low}"]',
                        "kafka.lanes": f'["{high}:4", "{low}:1"]',
                        "kafka.control_topic": '""', "metrics.listen": '"127.0.0.1:0"',
                        # Lanes order the messages the worker holds: a partition whose
                        # prefetch ran dry waits for its next fetch (FINDINGS.md).
                        "kafka.properties": "{ fetch_wait_max_ms = 10; }"})
    replies = Replies(kafka, topics["replies"])
    try:
        ids = [f"high-{k:03d}" for k in range(n_high)] + [f"low-{k:03d}" for k in range(n_low)]
        replies.wait_terminal(ids, timeout=300)
    finally:
        replies.close()
    # One slot: the order of the terminal replies is the start order.
    order = [r["id"] for _, r, _ in replies.raw if r["type"] in ("done", "error")]
    last = min(max(i for i, j in enumerate(order) if j.startswith(lane)) for lane in ("h", "l"))
    window = order[10:last + 1]  # both lanes held work (the first fetches aside)
    highs = sum(j.startswith("high") for j in window)
    lows = len(window) - highs
    ratio = highs / lows
    print(f"\nlanes 4:1: {highs} high, {lows} low starts while both had work; "
          f"ratio {ratio:.2f}; order: {''.join(j[0] for j in order)}")
    assert lows > 0 and abs(ratio - 4.0) <= 0.4
    page = metrics_text(w)
    assert f'llmq_lane_queue_wait_seconds_count{{' in page and f'lane="{low}"' in page
