"""test_rebalance.py — workers sharing a jobs topic through the consumer group
(real broker): partitions taken from a worker have their in-flight jobs
cancelled and the new owner runs them again (the fake llama-server, for jobs
that are surely still running when the group moves); two, then three workers
with the real llama-server share a topic and every job completes, duplicates
only ever as a second run, never two terminal replies of one run."""
import re

from fault_tools import (FAKE_LLAMA, FAST_SESSION, ONE_THREAD, ReplyTracker, Submitter,
                         group_of, new_topics, pool, wait_committed)  # noqa: F401
from llmq_harness import job


def worker_id(w):
    return re.search(r"starting as (\S+)", w.log_text()).group(1)


def test_revoked_jobs_are_cancelled_and_the_new_owner_runs_them(bootstrap, topics, pool):
    # Four jobs, one per partition, all running on the first worker. The fake
    # llama-server makes each take 10 s whatever else the machine is doing, so
    # they are still running when the group moves partitions.
    # The cooperative protocol, named (the default on librdkafka < 2.10.0 is the
    # eager one, under which every rebalance revokes, so cancels, every job).
    cfg = {"llama.slots": "4", "limits.max_tokens": "4096",
           "kafka.properties": FAST_SESSION.replace(
               "}", 'partition_assignment_strategy = "cooperative-sticky"; }')}
    env = {"FAKE_LLAMA_TOKEN_MS": "20", "FAKE_LLAMA_TOKENS": "100000"}
    a = pool.start(topics, bootstrap, llama_bin=str(FAKE_LLAMA), env=env, **cfg)
    replies = ReplyTracker(bootstrap, topics["replies"])
    jobs = [job(f"Story {p}", max_tokens=500) for p in range(4)]
    sub = Submitter(bootstrap)
    placed = [sub.send(topics["jobs"], [j], partition=p)[0] for p, j in enumerate(jobs)]
    replies.wait_until(lambda r: all(r.runs(j["id"]) for j in jobs), 60, "all four streaming")
    first_run = {j["id"]: replies.runs(j["id"])[0] for j in jobs}

    # A second worker joins: the group moves some partitions to it.
    b = pool.start(topics, bootstrap, llama_bin=str(FAKE_LLAMA), env=env, **cfg)
    ids = [j["id"] for j in jobs]
    replies.wait(ids, timeout=180)
    firsts = replies.check_delivery(ids)
    moved = [i for i in ids if firsts[i]["worker"] == worker_id(b)]
    stayed = [i for i in ids if firsts[i]["worker"] == worker_id(a)]
    assert moved and stayed and len(moved) + len(stayed) == 4, firsts
    a_log = a.log_text()
    for i in moved:
        # Cancelled on the first worker (no terminal reply for that run), run again.
        assert f"job {i}: cancelled, partition" in a_log
        assert firsts[i]["run"] != first_run[i]
        assert not [t for t in replies.terminals(i) if t["run"] == first_run[i]]
        assert firsts[i]["usage"]["completion_tokens"] == 500
    for i in stayed:
        assert firsts[i]["run"] == first_run[i], "a job kept by its worker is not rerun"
    # Each partition's committed offset passes its job: the revoked ones
    # committed by nobody but the new owner, after it finished them.
    wait_committed(bootstrap, group_of(topics), topics["jobs"],
                   {p: off + 1 for p, off in placed})


def test_two_then_three_workers_share_a_topic(kafka, bootstrap, pool):
    topics = new_topics(kafka, partitions=6)
    cfg = {"llama.slots": "3", "kafka.properties": FAST_SESSION,
           "llama.extra_args": ONE_THREAD}
    workers = [pool.start(topics, bootstrap, **cfg) for _ in range(2)]
    replies = ReplyTracker(bootstrap, topics["replies"])
    sub = Submitter(bootstrap)
    first = [job(f"First wave {i}", max_tokens=8) for i in range(60)]
    sub.send(topics["jobs"], first)
    replies.wait_until(lambda r: len(r.terminated) >= 20, 60, "the first wave under way")
    workers.append(pool.start(topics, bootstrap, **cfg))
    second = [job(f"Second wave {i}", max_tokens=8) for i in range(60)]
    sub.send(topics["jobs"], second)
    ids = [j["id"] for j in first + second]
    replies.wait(ids, timeout=180)
    replies.settle(2.0)
    firsts = replies.check_delivery(ids)
    did = {w: sum(1 for i in ids if firsts[i]["worker"] == worker_id(w)) for w in workers}
    assert all(n > 0 for n in did.values()), f"a worker got no job: {did}"
    assert sum(did.values()) == len(ids)
    for w in workers:
        assert w.proc.poll() is None
