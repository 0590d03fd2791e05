"""test_load.py — 1,000 short jobs through three workers in one group (real
broker, real llama-server), three of the workers SIGKILLed along the way and
started again: every job gets a terminal reply, none is missing, no run ends
twice, and the chunks of the run each first terminal reply names are whole."""
import time

from fault_tools import (FAST_SESSION, ONE_THREAD, ReplyTracker, Submitter, new_topics,
                         pool)  # noqa: F401
from llmq_harness import job

N_JOBS = 1000
KILL_AT = (200, 450, 700)  # terminal replies seen when a worker is killed
TIME_LIMIT_S = 300


def test_thousand_jobs_with_three_workers_killed(kafka, bootstrap, pool):
    topics = new_topics(kafka, partitions=6)
    cfg = {"llama.slots": "3", "kafka.properties": FAST_SESSION, "llama.extra_args": ONE_THREAD}
    workers = [pool.start(topics, bootstrap, **cfg) for _ in range(3)]
    replies = ReplyTracker(bootstrap, topics["replies"])
    jobs = [job(f"Load job {i}", max_tokens=8, seed=i) for i in range(N_JOBS)]
    t0 = time.time()
    Submitter(bootstrap).send(topics["jobs"], jobs)
    kills = []

    def maybe_kill():
        if len(kills) < len(KILL_AT) and len(replies.terminated) >= KILL_AT[len(kills)]:
            victim = len(kills) % len(workers)
            workers[victim].proc.kill()
            workers[victim].wait_exit(timeout=10)
            kills.append((victim, len(replies.terminated), round(time.time() - t0, 1)))
            # Restart it at once, so that the group keeps its capacity.
            workers[victim] = pool.start(topics, bootstrap, wait_ready=False, **cfg)

    ids = [j["id"] for j in jobs]
    replies.wait(ids, timeout=TIME_LIMIT_S, tick=maybe_kill)
    elapsed = time.time() - t0
    replies.settle(2.0)
    assert len(kills) == 3, f"only {len(kills)} kill(s) happened: {kills}"
    firsts = replies.check_delivery(ids)
    assert set(firsts) == set(ids)
    reruns = sum(1 for i in ids if len(replies.runs(i)) > 1)
    print(f"\n{N_JOBS} jobs in {elapsed:.1f} s, kills (worker, replies, s) {kills}, "
          f"{reruns} job(s) ran more than once")
    for w in workers:
        assert w.proc.poll() is None
