"""test_rerun_bound.py — how many jobs run twice when workers die (issue 16
point 5), on a private broker: 300 jobs of 48 tokens through one worker of 4
slots (the real llama-server and tiny model), its llama-server SIGKILLed once and
the worker SIGKILLed twice and started again; once on a fresh broker and once
right after that broker was SIGKILLed and restarted.

The bound, computed from the reply stream: a job runs twice only if it was in
flight at a kill (a run started, not ended) or if its terminal reply from the
killed worker came within one commit interval before the worker died (done,
not yet committed). Jobs with a second terminal reply can only be the latter.
And every first done can be rebuilt from its run's chunks, unless a chunk was
given up on, which the worker counts and logs with the job's id (spec.md)."""
import os
import re
import signal
import time
import urllib.request

import pytest

from fault_tools import (FAKE_LLAMA, FAST_SESSION, PrivateBroker, ReplyTracker, Submitter,
                         committed, group_of, llama_child, new_topics, pool)  # noqa: F401
from llmq_harness import Kafka, job

N_JOBS = 300
TOKENS = 48
PARTITIONS = 4
LLAMA_KILL_AT = 40  # jobs ended when llama-server is SIGKILLed
WORKER_KILLS_AT = (120, 210)  # jobs ended when the worker is SIGKILLed
# LLMQ_RERUN_FAKE=1: the scripted fake llama-server instead of the real one
# (a quicker rehearsal while changing the test; the suite runs the real one).
REAL = os.environ.get("LLMQ_RERUN_FAKE") != "1"
TIME_LIMIT_S = 600 if REAL else 150
# worker/commits.c: a done offset is committed at once, or COMMIT_GAP_MS after
# the last commit. The window adds the terminal reply's acknowledgement and
# the commit's own round trip, which took up to 250 ms on this busy 2-core
# machine (FINDINGS.md, "Point 5").
COMMIT_GAP_S = 0.05
ROUND_TRIPS_S = 0.25
COMMIT_WINDOW_S = COMMIT_GAP_S + ROUND_TRIPS_S
CFG = {"llama.slots": "4", "kafka.properties": FAST_SESSION, "limits.max_tokens": "64",
       "llama.restart_backoff_max_s": "1", "metrics.listen": '"127.0.0.1:0"'}
FAKE = {"FAKE_LLAMA_TOKEN_MS": "10", "FAKE_LLAMA_TOKENS": "100000"}  # 0.5 s per job


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = PrivateBroker(tmp_path_factory.mktemp("rerun-kafka"))
    b.start()
    yield b
    b.stop()


class Kills:
    """The kills of one run: (what, time, the killed worker's id or None), and
    the group's committed offsets read right after each worker died."""

    def __init__(self, bootstrap, topics):
        self.bootstrap, self.topics = bootstrap, topics
        self.events = []
        self.committed_after = []

    def llama(self, w):
        os.kill(llama_child(w), signal.SIGKILL)
        self.events.append(("llama-server", time.time(), None))

    def worker(self, w, pool):
        w.proc.kill()
        w.wait_exit(timeout=10)
        self.events.append(("worker", time.time(), worker_id(w)))
        self.committed_after.append(committed(self.bootstrap, group_of(self.topics),
                                              self.topics["jobs"], range(PARTITIONS)))
        return start(pool, self.topics, self.bootstrap, wait_ready=False)


def start(pool, topics, bootstrap, wait_ready=True):
    if REAL:
        return pool.start(topics, bootstrap, wait_ready=wait_ready, **CFG)
    return pool.start(topics, bootstrap, wait_ready=wait_ready, llama_bin=str(FAKE_LLAMA),
                      env=FAKE, **CFG)


def worker_id(w):
    return re.search(r'id = "([^"]+)"', w.cfg_path.read_text()).group(1)


class Runs:
    """Each run seen in the reply stream: its job, first and last message
    times (the producer's CreateTime, in s) and its terminal reply."""

    def __init__(self, replies):
        self.runs = {}
        for msg, r in replies.messages:
            if not r.get("run"):
                continue
            ts = msg.timestamp()[1] / 1000
            run = self.runs.setdefault(r["run"], {"id": r["id"], "first": ts, "last": ts,
                                                  "terminal": None})
            run["first"], run["last"] = min(run["first"], ts), max(run["last"], ts)
            if r["type"] in ("done", "error") and run["terminal"] is None:
                run["terminal"] = (ts, r.get("worker"))

    def in_flight(self, since, at):
        """Jobs of the runs started in (since, at] and not ended by `at`."""
        return {r["id"] for r in self.runs.values() if since < r["first"] <= at
                and (r["terminal"] is None or r["terminal"][0] > at)}

    def ended_by(self, worker, start, end):
        """Jobs whose run on `worker` ended in [start, end]."""
        return {r["id"] for r in self.runs.values() if r["terminal"]
                and r["terminal"][1] == worker and start <= r["terminal"][0] <= end}


def end_ages_ms(kills, runs, firsts):
    """How long before its worker's kill each of these first terminal replies
    (id -> run) came."""
    ages = []
    for what, at, worker in kills.events:
        ages += [round((at - r["terminal"][0]) * 1000) for run, r in runs.runs.items()
                 if firsts.get(r["id"]) == run and r["terminal"][1] == worker
                 and r["terminal"][0] <= at]
    return sorted(ages)


def story(job_ids, kills, runs, placed):
    """What happened to each job, in time relative to the first kill (s)."""
    t0 = kills.events[0][1]
    lines = [f"kills: {[(w, round(at - t0, 3), who) for w, at, who in kills.events]}; "
             f"committed after each worker kill: {kills.committed_after}"]
    for job_id in sorted(job_ids):
        mine = [(round(r["first"] - t0, 3), round(r["last"] - t0, 3),
                 r["terminal"] and (round(r["terminal"][0] - t0, 3), r["terminal"][1]))
                for r in runs.runs.values() if r["id"] == job_id]
        lines.append(f"{job_id} at {placed[job_id]}: runs {sorted(mine)}")
    return "\n".join(lines)


def bound_of(kills, runs):
    """(jobs that may run twice, jobs that may end twice), per the bound."""
    may_rerun, may_end_twice, since = set(), set(), 0.0
    for what, at, worker in kills.events:
        may_rerun |= runs.in_flight(since, at)
        if what == "worker":
            late = runs.ended_by(worker, at - COMMIT_WINDOW_S, at)
            may_rerun |= late
            may_end_twice |= late
        since = at
    return may_rerun, may_end_twice


def uncommitted_ends(kills, runs, placed):
    """Jobs the killed worker ended whose offset the group had not committed
    right after its death: exactly those the next worker runs again."""
    late = set()
    for (what, at, worker), offsets in zip([e for e in kills.events if e[0] == "worker"],
                                           kills.committed_after):
        for job_id in runs.ended_by(worker, 0, at):
            part, off = placed[job_id]
            if offsets[part] is None or off >= offsets[part]:
                late.add(job_id)
    return late


def gave_up_chunks(workers):
    """Job ids of the chunks each worker logged as given up on, and the
    last (live) worker's llmq_gave_up_total{what="chunk"} sum."""
    logged = [re.findall(r"job (\S+): .*gave up chunk", w.log_text()) for w in workers]
    port = int(re.search(r"metrics on .*\(port (\d+)\)", workers[-1].log_text()).group(1))
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    counted = sum(float(v) for v in re.findall(
        r'^llmq_gave_up_total\{[^}]*what="chunk"[^}]*\} (\S+)$', text, re.M))
    return {j for ids in logged for j in ids}, len(logged[-1]), counted


def check_chunks(replies, ids, lost_ids):
    """Each first done rebuilt from its run's chunks; a gap only where the
    worker logged a chunk of that job as given up on. Returns the gaps."""
    gaps = []
    for job_id in ids:
        first = replies.first_terminal(job_id)
        if first["type"] != "done":
            continue
        seqs = [c["seq"] for c in replies.chunks(job_id, first["run"])]
        assert len(seqs) == len(set(seqs)), f"{job_id}: a chunk repeated: {seqs}"
        if seqs == list(range(len(seqs))):
            text = "".join(c["text"] for c in sorted(replies.chunks(job_id, first["run"]),
                                                     key=lambda c: c["seq"]))
            assert text == first["text"], f"{job_id}: chunks {text!r} != done {first['text']!r}"
            continue
        assert job_id in lost_ids, f"{job_id}: seq gap {seqs} with no chunk given up on"
        gaps.append(job_id)
    return gaps


def run_shape(bootstrap, pool):
    """The issue's shape on `bootstrap`; returns the numbers, asserting the bound."""
    topics = new_topics(Kafka(bootstrap), PARTITIONS)
    workers = [start(pool, topics, bootstrap)]
    replies = ReplyTracker(bootstrap, topics["replies"])
    jobs = [job(f"Rerun job {i}", max_tokens=TOKENS) for i in range(N_JOBS)]
    ids = [j["id"] for j in jobs]
    t0 = time.time()
    placed = dict(zip(ids, Submitter(bootstrap).send(topics["jobs"], jobs)))
    kills = Kills(bootstrap, topics)

    def tick():
        ended, n_worker = len(replies.terminated), len(workers) - 1
        if not kills.events and ended >= LLAMA_KILL_AT:
            kills.llama(workers[-1])
        elif n_worker < len(WORKER_KILLS_AT) and ended >= WORKER_KILLS_AT[n_worker]:
            workers.append(kills.worker(workers[-1], pool))

    replies.wait(ids, timeout=TIME_LIMIT_S, tick=tick)
    elapsed = time.time() - t0
    replies.settle(2.0)
    assert [e[0] for e in kills.events] == ["llama-server", "worker", "worker"], kills.events
    replies.check_delivery(ids, expect=None)  # one terminal reply per run at most
    try:
        return numbers(replies, ids, kills, placed, workers, elapsed)
    finally:
        replies.close()


def numbers(replies, ids, kills, placed, workers, elapsed):
    runs = Runs(replies)
    ran_twice = {i for i in ids if len(replies.runs(i)) > 1}
    ended_twice = {i for i in ids if len(replies.terminals(i)) > 1}
    may_rerun, may_end_twice = bound_of(kills, runs)
    late = uncommitted_ends(kills, runs, placed)
    lost_ids, logged_last, counted_last = gave_up_chunks(workers)
    gaps = check_chunks(replies, ids, lost_ids)
    times = [e[1] for e in kills.events]
    firsts = {i: replies.first_terminal(i)["run"] for i in ended_twice}
    got = {"s": round(elapsed, 1), "ran_twice": len(ran_twice), "ended_twice": len(ended_twice),
           "bound_runs": len(may_rerun), "bound_ends": len(may_end_twice),
           "in_flight": [len(runs.in_flight(a, b)) for a, b in zip([0.0] + times, times)],
           "uncommitted_ends": len(late), "ages_ms": end_ages_ms(kills, runs, firsts),
           "chunk_gaps": len(gaps), "chunks_given_up": len(lost_ids)}
    print(f"\nrerun bound: {got}")
    assert counted_last == logged_last, "the last worker's chunk give-ups: metric != log"
    assert ended_twice <= late, \
        f"ended twice though committed:\n{story(ended_twice - late, kills, runs, placed)}"
    assert ran_twice <= may_rerun, \
        f"ran twice beyond the bound:\n{story(ran_twice - may_rerun, kills, runs, placed)}"
    assert ended_twice <= may_end_twice, \
        f"ended twice beyond the bound:\n{story(ended_twice - may_end_twice, kills, runs, placed)}"
    return got


def test_reruns_bounded_on_a_fresh_broker(broker, pool):
    Kafka(broker.bootstrap).wait_ready(60)
    run_shape(broker.bootstrap, pool)


def test_reruns_bounded_right_after_a_broker_restart(broker, pool):
    broker.kill()
    broker.start()
    Kafka(broker.bootstrap).wait_ready(60)
    run_shape(broker.bootstrap, pool)
