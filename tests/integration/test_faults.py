"""test_faults.py — the worker's guarantees under faults, against the real
broker: deadlines while generating and while queued, llama-server killed
mid-job (real) or dying on every run (the fake), a llama-server that cannot
start, SIGTERM drains (in time, and past the drain timeout), a worker killed
mid-stream, and a broker restarted under load (a private broker, so the
shared one keeps serving the other tests)."""
import os
import signal
import threading
import time

import msgpack
import pytest
from confluent_kafka import Producer

from fault_tools import (FAKE_LLAMA, FAST_SESSION, PrivateBroker, ReplyTracker, Submitter,
                         committed, group_members, group_of, llama_child, new_topics, pid_alive,
                         pool, read_topic, wait_committed, wait_for)  # noqa: F401
from llmq_harness import Kafka, job

# One slot with room for long generations (the real server, tiny model).
LONG_CFG = {"llama.slots": "1", "llama.context": "8192", "limits.max_tokens": "4096"}


def now_ms():
    return int(time.time() * 1000)


def fake_env(**knobs):
    return {f"FAKE_LLAMA_{k.upper()}": str(v) for k, v in knobs.items()}


def start_fake(pool, topics, bootstrap, knobs, **overrides):
    return pool.start(topics, bootstrap, llama_bin=str(FAKE_LLAMA), env=fake_env(**knobs),
                      **overrides)


# ---- deadlines ----

def test_deadline_passes_while_generating_fake_slot_freed(bootstrap, topics, pool):
    # The fake would need 200 s for this job; its one slot must be free again
    # right after the deadline, or the next job would wait behind it.
    start_fake(pool, topics, bootstrap, {"token_ms": 50, "tokens": 100000}, **{
        "llama.slots": "1", "limits.max_tokens": "4096"})
    replies = ReplyTracker(bootstrap, topics["replies"])
    slow = job("Slow", max_tokens=4000, deadline_ms=now_ms() + 2000)
    quick = job("Quick", max_tokens=4)
    Submitter(bootstrap).send(topics["jobs"], [slow, quick], partition=0)
    replies.wait([slow["id"]], timeout=30)
    err = replies.first_terminal(slow["id"])
    assert err["code"] == "expired" and err["retryable"] is False, err
    assert "while generating" in err["message"], err
    assert err["run"] and replies.chunks(slow["id"], err["run"]), "it was generating"
    t0 = time.time()
    replies.wait([quick["id"]], timeout=20)
    replies.check_delivery([quick["id"]])
    assert time.time() - t0 < 15


def test_deadline_passes_while_generating_real(bootstrap, topics, pool):
    w = pool.start(topics, bootstrap, **LONG_CFG)
    replies = ReplyTracker(bootstrap, topics["replies"])
    slow = job("Once upon a time", max_tokens=4096, deadline_ms=now_ms() + 1500)
    quick = job("Quick", max_tokens=8)
    Submitter(bootstrap).send(topics["jobs"], [slow, quick], partition=0)
    replies.wait([slow["id"], quick["id"]], timeout=60)
    err = replies.first_terminal(slow["id"])
    assert err["code"] == "expired" and "while generating" in err["message"], err
    generated = replies.chunks(slow["id"], err["run"])
    assert 0 < len(generated) < 4096
    replies.check_delivery([quick["id"]])
    # The connection was closed, and llama-server cancelled the generation.
    wait_for(lambda: "cancel task" in w.log_text(), 10, "llama-server to cancel the task")


def test_deadline_passes_while_queued(bootstrap, topics, pool):
    # llama-server dies under the job and takes 4 s to come back: the job
    # waits in the worker's queue for its rerun, and its deadline passes there.
    start_fake(pool, topics, bootstrap, {"mode": "die-mid-stream", "die_after": 2, "load_s": 4},
               **{"llama.restart_backoff_max_s": "1"})
    replies = ReplyTracker(bootstrap, topics["replies"])
    j = job("Doomed", max_tokens=8, deadline_ms=now_ms() + 2000)
    Submitter(bootstrap).send(topics["jobs"], [j])
    replies.wait([j["id"]], timeout=30)
    err = replies.first_terminal(j["id"])
    assert err["code"] == "expired" and "while queued" in err["message"], err


# ---- at least once ----

def test_committed_offset_is_the_contiguous_done_prefix(bootstrap, topics, pool):
    # Two jobs in one partition finish out of order: the committed offset
    # waits for the first, then passes both.
    start_fake(pool, topics, bootstrap, {"token_ms": 20, "tokens": 100000},
               **{"llama.slots": "2"})
    replies = ReplyTracker(bootstrap, topics["replies"])
    slow, fast = job("Slow", max_tokens=150), job("Fast", max_tokens=2)  # 3 s, 40 ms
    placed = Submitter(bootstrap).send(topics["jobs"], [slow, fast], partition=0)
    replies.wait([fast["id"]], timeout=30)
    assert replies.first_terminal(slow["id"]) is None, "the slow one is still running"
    time.sleep(0.6)  # three commit delays: a commit would have happened by now
    got = committed(bootstrap, group_of(topics), topics["jobs"], [0])[0]
    assert got is None or got <= placed[0][1], f"committed {got} past a job still running"
    replies.wait([slow["id"]], timeout=30)
    wait_committed(bootstrap, group_of(topics), topics["jobs"], {0: placed[1][1] + 1})
    replies.check_delivery([slow["id"], fast["id"]])


def test_offset_is_done_only_when_the_terminal_reply_is_acknowledged(kafka, bootstrap, pool):
    # The worker's reply topic disappears under it (it refuses to start
    # without it): the job runs, but its done reply cannot be delivered, so
    # its offset must not be committed; once the topic exists again the reply
    # goes out and the offset follows.
    topics = new_topics(kafka, 1)
    w = pool.start(topics, bootstrap,
                   **{"kafka.properties": "{ topic_metadata_propagation_max_ms = 1000; "
                                          "message_timeout_ms = 3000; }"})
    kafka.admin.delete_topics([topics["replies"]], operation_timeout=30)[topics["replies"]] \
        .result(timeout=30)
    wait_for(lambda: topics["replies"] not in kafka.admin.list_topics(timeout=10).topics, 30,
             "the reply topic to be deleted")
    j = job("Patience", max_tokens=8)
    (placed,) = Submitter(bootstrap).send(topics["jobs"], [j])
    try:
        wait_for(lambda: "not acknowledged" in w.log_text() or "cannot produce" in w.log_text(),
                 60, "the worker to retry its undeliverable reply")
    except AssertionError as e:
        raise AssertionError(f"{e}; worker log:\n{w.log_text()[-4000:]}") from None
    time.sleep(1.0)
    assert committed(bootstrap, group_of(topics), topics["jobs"], [0])[0] in (None, placed[1])
    kafka.create_topic(topics["replies"], 1)
    replies = ReplyTracker(bootstrap, topics["replies"])
    replies.wait([j["id"]], timeout=60)
    # (Its chunks, fire and forget, were lost with the topic; the done has the text.)
    done = replies.first_terminal(j["id"])
    assert done["type"] == "done" and done["usage"]["completion_tokens"] == 8, done
    wait_committed(bootstrap, group_of(topics), topics["jobs"], {0: placed[1] + 1})


# ---- llama-server failures ----

def test_llama_server_error_ends_backend_error_and_the_partition_goes_on(bootstrap, topics,
                                                                          pool):
    start_fake(pool, topics, bootstrap, {"mode": "error-500"})
    replies = ReplyTracker(bootstrap, topics["replies"])
    jobs = [job(f"Refused {i}", max_tokens=8) for i in range(3)]
    placed = Submitter(bootstrap).send(topics["jobs"], jobs, partition=0)
    replies.wait([j["id"] for j in jobs], timeout=30)
    for j in jobs:
        err = replies.first_terminal(j["id"])
        assert err["code"] == "backend_error" and err["retryable"] is True, err
        assert err["run"], "it ran"
    wait_committed(bootstrap, group_of(topics), topics["jobs"], {0: placed[-1][1] + 1})
    assert read_topic(bootstrap, topics["dead"], 1, timeout=1.5) == [], "not dead-lettered"


def test_llama_server_killed_mid_job_jobs_run_again(bootstrap, topics, pool):
    w = pool.start(topics, bootstrap, **dict(LONG_CFG, **{"llama.slots": "2"}))
    replies = ReplyTracker(bootstrap, topics["replies"])
    jobs = [job("First story", max_tokens=800), job("Second story", max_tokens=800)]
    Submitter(bootstrap).send(topics["jobs"], jobs[:1], partition=0)
    Submitter(bootstrap).send(topics["jobs"], jobs[1:], partition=1)
    replies.wait_until(lambda r: all(r.runs(j["id"]) for j in jobs), 30, "both jobs streaming")
    first_runs = {j["id"]: replies.runs(j["id"])[0] for j in jobs}
    child = llama_child(w)
    os.kill(child, signal.SIGKILL)
    replies.wait([j["id"] for j in jobs], timeout=120)
    firsts = replies.check_delivery([j["id"] for j in jobs])
    for j in jobs:
        done = firsts[j["id"]]
        assert done["run"] != first_runs[j["id"]], "the lost run cannot have ended"
        assert done["usage"]["completion_tokens"] == 800
        assert not [t for t in replies.terminals(j["id"]) if t["run"] == first_runs[j["id"]]]
    log = w.log_text()
    assert "killed by signal 9" in log
    assert log.count("lost (") >= 2 and "running again" in log
    assert llama_child(w) != child


def test_llama_server_dying_every_run_ends_backend_failed(bootstrap, topics, pool):
    w = start_fake(pool, topics, bootstrap, {"mode": "die-mid-stream", "die_after": 2},
                   **{"limits.retries": "2", "llama.restart_backoff_max_s": "1"})
    replies = ReplyTracker(bootstrap, topics["replies"])
    j = job("Cursed", max_tokens=8)
    Submitter(bootstrap).send(topics["jobs"], [j])
    replies.wait([j["id"]], timeout=60)
    err = replies.first_terminal(j["id"])
    assert err["code"] == "backend_failed" and err["retryable"] is True, err
    assert "died in 3 run(s)" in err["message"], err
    runs = replies.runs(j["id"])
    assert len(runs) == 3, f"1 run and 2 retries, got {runs}"
    assert err["run"] == runs[-1]
    assert len(replies.terminals(j["id"])) == 1
    # The worker goes on: it is still in the group, waiting for the next job.
    assert w.proc.poll() is None


def test_llama_server_that_cannot_start(kafka, bootstrap, topics, pool):
    w = pool.start(topics, bootstrap, wait_ready=False,
                   **{"llama.model": '"/nonexistent/llmq-model.gguf"',
                      "llama.restart_backoff_max_s": "1"})
    replies = ReplyTracker(bootstrap, topics["replies"])
    j = job("Nobody home", max_tokens=8)
    Submitter(bootstrap).send(topics["jobs"], [j])
    # It keeps trying, and says why it cannot.
    wait_for(lambda: w.log_text().count("restarting in") >= 3, 60, "three restarts")
    log = w.log_text()
    assert "exited with status" in log and "/nonexistent/llmq-model.gguf" in log, log[-3000:]
    assert w.proc.poll() is None, "the worker must stay up"
    # Not ready: not in the group, nothing consumed, nothing committed.
    assert "assigned" not in log
    assert group_members(kafka, group_of(topics)) == []
    replies.settle(1.0)
    assert not replies.messages
    assert committed(bootstrap, group_of(topics), topics["jobs"], range(4)) == {
        p: None for p in range(4)}
    w.signal(signal.SIGTERM)
    assert w.wait_exit(timeout=20) == 0


# ---- shutdown ----

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_finishes_jobs_in_flight_commits_and_exits_0(bootstrap, topics, pool, sig):
    # The fake takes 2.5 s per job, so both are surely in flight at the signal.
    w = start_fake(pool, topics, bootstrap, {"token_ms": 10, "tokens": 100000},
                   **{"llama.slots": "2", "limits.drain_timeout_s": "60"})
    replies = ReplyTracker(bootstrap, topics["replies"])
    jobs = [job("One", max_tokens=250), job("Two", max_tokens=250)]
    sub = Submitter(bootstrap)
    placed = sub.send(topics["jobs"], jobs[:1], partition=0) + sub.send(
        topics["jobs"], jobs[1:], partition=1)
    replies.wait_until(lambda r: all(r.runs(j["id"]) for j in jobs), 30, "both jobs streaming")
    w.signal(sig)
    late = job("Too late", max_tokens=8)
    (late_at,) = sub.send(topics["jobs"], [late], partition=2)
    assert w.wait_exit(timeout=60) == 0, w.log_text()[-3000:]
    replies.wait([j["id"] for j in jobs], timeout=10)
    for done in replies.check_delivery([j["id"] for j in jobs]).values():
        assert done["usage"]["completion_tokens"] == 250
    assert "draining: 2 job(s) in flight" in w.log_text()
    got = committed(bootstrap, group_of(topics), topics["jobs"], [0, 1, 2])
    assert got[0] == placed[0][1] + 1 and got[1] == placed[1][1] + 1, got
    # A draining worker takes nothing new.
    replies.settle(1.0)
    assert late["id"] not in replies.by_id
    assert got[2] is None or got[2] <= late_at[1]


def test_drain_timeout_cancels_and_another_worker_reruns(bootstrap, topics, pool):
    w1 = start_fake(pool, topics, bootstrap, {"token_ms": 100, "tokens": 100000},
                    **{"limits.drain_timeout_s": "1"})
    replies = ReplyTracker(bootstrap, topics["replies"])
    j = job("Endless", max_tokens=300)  # 30 s on this fake
    (placed,) = Submitter(bootstrap).send(topics["jobs"], [j], partition=0)
    replies.wait_until(lambda r: r.runs(j["id"]), 30, "the job streaming")
    first_run = replies.runs(j["id"])[0]
    t0 = time.time()
    w1.signal(signal.SIGTERM)
    assert w1.wait_exit(timeout=20) == 0
    assert time.time() - t0 < 10
    assert "drain timeout: cancelling 1 unfinished job(s)" in w1.log_text()
    replies.settle(1.0)
    assert replies.first_terminal(j["id"]) is None, "cancelled, not ended"
    assert committed(bootstrap, group_of(topics), topics["jobs"], [0])[0] in (None, placed[1])
    # The job is still the group's to do: the next worker runs it again.
    start_fake(pool, topics, bootstrap, {"token_ms": 1, "tokens": 100000})
    replies.wait([j["id"]], timeout=60)
    done = replies.check_delivery([j["id"]])[j["id"]]
    assert done["run"] != first_run
    wait_committed(bootstrap, group_of(topics), topics["jobs"], {0: placed[1] + 1})


def test_worker_killed_mid_stream_another_completes_the_job(bootstrap, topics, pool):
    cfg = dict(LONG_CFG, **{"kafka.properties": FAST_SESSION})
    w1 = pool.start(topics, bootstrap, **cfg)
    replies = ReplyTracker(bootstrap, topics["replies"])
    j = job("Interrupted", max_tokens=1500)
    (placed,) = Submitter(bootstrap).send(topics["jobs"], [j])
    replies.wait_until(lambda r: r.runs(j["id"]), 30, "the job streaming")
    first_run = replies.runs(j["id"])[0]
    child = llama_child(w1)
    w1.proc.kill()
    w1.wait_exit(timeout=10)
    # Its llama-server goes with it (PR_SET_PDEATHSIG).
    wait_for(lambda: not pid_alive(child), 10, f"llama-server pid {child} to die with its worker")
    w2 = pool.start(topics, bootstrap, **cfg)
    replies.wait([j["id"]], timeout=90)
    done = replies.check_delivery([j["id"]])[j["id"]]
    assert done["run"] != first_run
    assert done["worker"] in w2.log_text()
    assert done["usage"]["completion_tokens"] == 1500
    wait_committed(bootstrap, group_of(topics), topics["jobs"], {placed[0]: placed[1] + 1})


# ---- the broker ----

class Feeder(threading.Thread):
    """Produces short jobs at a steady rate until stopped, as a client would:
    while the broker is away its producer holds them and sends them later."""

    def __init__(self, bootstrap, topic, per_s):
        super().__init__(daemon=True)
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        self.topic, self.per_s = topic, per_s
        self.ids = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            j = job(f"Fed {len(self.ids)}", max_tokens=8)
            self.producer.produce(self.topic, msgpack.packb(j), key=j["id"])
            self.ids.append(j["id"])
            self.producer.poll(0)
            time.sleep(1 / self.per_s)

    def finish(self):
        """Stop, wait until the broker has every job; returns their ids."""
        self.halt.set()
        self.join(timeout=10)
        assert self.producer.flush(120) == 0, "jobs not acknowledged by the broker"
        return self.ids


def test_broker_restarted_and_killed_under_load(tmp_path, pool):
    broker = PrivateBroker(tmp_path / "private-kafka")
    broker.start()
    w = None
    try:
        kafka = Kafka(broker.bootstrap)
        kafka.wait_ready(60)
        topics = new_topics(kafka, 4)
        w = pool.start(topics, broker.bootstrap, **{"llama.slots": "2"})
        replies = ReplyTracker(broker.bootstrap, topics["replies"])
        feeder = Feeder(broker.bootstrap, topics["jobs"], per_s=10)
        feeder.start()
        replies.wait_until(lambda r: len(r.terminated) >= 20, 60, "the first replies")
        broker.stop()  # a clean restart
        time.sleep(2)  # the worker generates on; its replies wait in librdkafka
        broker.start()
        sent = set(feeder.ids)  # all of these must end, and the feeding goes on
        replies.wait_until(lambda r: sent <= r.terminated, 120, "the jobs sent before")
        broker.kill()  # a crash
        time.sleep(2)
        broker.start()
        sent = set(feeder.ids)
        replies.wait_until(lambda r: sent <= r.terminated, 120, "the jobs sent before")
        ids = feeder.finish()
        replies.wait(ids, timeout=120)
        replies.check_delivery(ids)
        assert w.proc.poll() is None, "the worker reconnects by itself"
        w.stop()
        assert w.proc.returncode == 0, w.log_text()[-3000:]
        replies.close()
        kafka.close()
    finally:
        if w:
            w.stop()
        broker.stop()
