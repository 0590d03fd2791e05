"""test_fleet.py — the topologies fleets run (real broker, the real
llama-server with the tiny model, one thread each): two models' workers, each
model with its own jobs topic, in ONE group id, with a worker joining and one
leaving (both "models" are the tiny model: what is tested is the topics and
the group, not the weights); the assignment strategy
chosen for the linked librdkafka (and kafka.properties winning); a worker
whose slots are all busy for longer than max.poll.interval.ms with
statistics off stays in the group; a worker whose llama-server can no longer
start leaves the group so the healthy one takes every job, and rejoins once
its llama-server is back; static membership (a restart within the session
timeout moves no partition; a second member with the same id is fenced and
the fenced one exits 4); a poison job fails alone.

The scripted fake llama-server (tests/fakes/fake_llama_server.py) is used in
ONE test only, test_a_poison_job_fails_alone: it needs a llama-server that
dies whenever it generates for one particular prompt, which the real one never
does. The sick worker's "llama-server that cannot start any more" is the real
one behind a wrapper script that refuses to start it while a flag file exists."""
import json
import os
import re
import signal
import time
import urllib.error
import urllib.request
import uuid

from confluent_kafka import KafkaException

from fault_tools import (FAKE_LLAMA, FAST_SESSION, ONE_THREAD, ReplyTracker, Submitter,
                         llama_child, new_topics, pool, wait_for)  # noqa: F401
from llmq_harness import job

# Several real llama-servers share the two cores: one thread each, and a
# context just large enough for the short jobs (the per-slot context is
# llama.context / llama.slots).
REAL = {"llama.extra_args": ONE_THREAD, "llama.context": "1024"}


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(workers, seconds=3.0):
    """The CPU share each worker process used over `seconds` of idleness."""
    before = [cpu_seconds(w.proc.pid) for w in workers]
    time.sleep(seconds)
    return [(cpu_seconds(w.proc.pid) - b) / seconds for w, b in zip(workers, before)]


def readyz(worker):
    worker.wait_log("metrics on http://", timeout=30)
    port = re.search(r"metrics on http://\S+ \(port (\d+)\)", worker.log_text()).group(1)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def group_assignor(kafka, group):
    desc = kafka.admin.describe_consumer_groups([group], request_timeout=10)[group]
    try:
        return desc.result(timeout=15).partition_assignor
    except KafkaException:
        return None


def test_two_models_share_one_group_through_a_join_and_a_leave(kafka, bootstrap, pool):
    group = f"fleet-{uuid.uuid4().hex[:8]}"
    model_a, model_b = new_topics(kafka, partitions=4), new_topics(kafka, partitions=4)
    cfg = {**REAL, "kafka.group_id": f'"{group}"', "kafka.properties": FAST_SESSION,
           "llama.slots": "2"}
    start = time.time()
    a1 = pool.start(model_a, bootstrap, **cfg)
    a2 = pool.start(model_a, bootstrap, **cfg)
    b1 = pool.start(model_b, bootstrap, **cfg)
    assert "partition.assignment.strategy range,roundrobin: librdkafka 2.0." in a1.log_text() \
        or "partition.assignment.strategy cooperative-sticky" in a1.log_text()
    replies = {m["jobs"]: ReplyTracker(bootstrap, m["replies"]) for m in (model_a, model_b)}
    sub = Submitter(bootstrap)
    waves = {model_a["jobs"]: [], model_b["jobs"]: []}

    def send(n, tag):
        for topic in waves:
            wave = [job(f"{tag} {i}", max_tokens=8) for i in range(n)]
            sub.send(topic, wave)
            waves[topic] += wave

    send(30, "before")
    b2 = pool.start(model_b, bootstrap, **cfg)  # join
    send(30, "after the join")
    a1.stop()  # leave
    send(30, "after the leave")
    for topic, wave in waves.items():
        ids = [j["id"] for j in wave]
        replies[topic].wait(ids, timeout=120)
        replies[topic].check_delivery(ids)
    elapsed = time.time() - start
    live = [a2, b1, b2]
    for w in live:
        assert w.proc.poll() is None
        assert "rebalance error" not in w.log_text()
    # Every model's partitions are owned again after the leave: jobs sent after
    # it completed (above), and the survivors hold the assignment.
    assert "assigned" in b2.log_text()
    shares = idle_cpu(live)
    assert all(s < 0.10 for s in shares), f"an idle worker spins: CPU shares {shares}"
    print(f"\nfleet: 180 jobs on 2 topics, 1 group, join+leave: {elapsed:.1f} s; "
          f"idle CPU shares {[round(s, 3) for s in shares]}; "
          f"assignor {group_assignor(kafka, group)}")
    for r in replies.values():
        r.close()


def test_kafka_properties_choose_the_assignment_strategy(kafka, bootstrap, topics, pool):
    w = pool.start(topics, bootstrap,
                   **{**REAL,
                      "kafka.properties": '{ partition_assignment_strategy = "roundrobin"; }'})
    assert "partition.assignment.strategy roundrobin (from kafka.properties)" in w.log_text()
    group = f"g-{topics['jobs']}"
    assert wait_for(lambda: group_assignor(kafka, group) == "roundrobin", 20,
                    "the group's assignor to be roundrobin")


MAX_POLL_S = 10       # max.poll.interval.ms of the busy test
BUSY_CAP = 40_000     # the most tokens a busy job asks for
# The busy jobs are longer than a slot's context: the busy test's llama-server
# shifts the context instead of stopping. A small context (512 tokens a slot)
# keeps the token rate even along a job (measured: 2 slots, 1 thread, about
# 530 tokens/s each at every 1,000 tokens of 8,000; with 4,096 tokens a slot
# it fell from 415 to 150 as the context filled), so the rate of a short job
# predicts a long one's.
BUSY_ARGS = '["--threads", "1", "--context-shift"]'
BUSY_CONTEXT = "1024"


def both_busy_s(replies, ids):
    """How long the runs of these jobs all ran at once, from the reply stream:
    from the last one's first message to the first one's terminal reply (the
    producer's CreateTime), in s; and how long the longest of them ran."""
    spans = {}
    for msg, r in replies.messages:
        if r.get("id") in ids:
            ts = msg.timestamp()[1] / 1000
            first, last = spans.get(r["id"], (ts, ts))
            spans[r["id"]] = (min(first, ts), max(last, ts))
    overlap = min(last for _, last in spans.values()) - max(f for f, _ in spans.values())
    longest = max(last - first for first, last in spans.values())
    return overlap, longest


def test_busy_worker_stays_in_the_group_without_statistics(bootstrap, topics, pool):
    # Both slots busy for longer than max.poll.interval.ms (10 s), no
    # statistics events to wake the consumer: only the worker's own poll timer
    # keeps it in the group. The real tiny model's speed varies several-fold
    # with the machine's load, so the job length is derived from it: a first
    # pair of jobs measures the rate, and the next pair asks for 1.5 x
    # max.poll.interval.ms of tokens at that rate (at most 3 pairs, until one
    # pair kept both slots busy for longer than max.poll.interval.ms).
    props = ("{ statistics_interval_ms = 0; max_poll_interval_ms = %d; "
             "session_timeout_ms = 6000; heartbeat_interval_ms = 1000; }" % (MAX_POLL_S * 1000))
    w = pool.start(topics, bootstrap,
                   **{"kafka.properties": props, "llama.slots": "2",
                      "llama.extra_args": BUSY_ARGS, "llama.context": BUSY_CONTEXT,
                      "limits.max_tokens": str(BUSY_CAP)})
    replies = ReplyTracker(bootstrap, topics["replies"])
    tokens, busy, pairs, wait_s = 1000, 0.0, [], 90.0
    while busy <= MAX_POLL_S and len(pairs) < 3:
        jobs = [job(f"long {len(pairs)} {i}", max_tokens=tokens) for i in range(2)]
        Submitter(bootstrap).send(topics["jobs"], jobs)
        ids = [j["id"] for j in jobs]
        replies.wait(ids, timeout=wait_s)
        replies.settle(1.0)
        firsts = replies.check_delivery(ids)
        for i in ids:
            assert len(replies.runs(i)) == 1, f"{i} ran twice"
            assert firsts[i]["usage"]["completion_tokens"] == tokens
        busy, longest = both_busy_s(replies, set(ids))
        pairs.append((tokens, round(busy, 1)))
        rate = tokens / max(longest, 0.1)  # tokens/s of one job
        tokens = min(BUSY_CAP, max(tokens, int(1.5 * MAX_POLL_S * rate)))
        wait_s = 60 + 3 * tokens / rate
    print(f"\nbusy worker: (tokens per job, both slots busy s) {pairs}")
    assert busy > MAX_POLL_S, f"no pair kept both slots busy over {MAX_POLL_S} s: {pairs}"
    log = w.log_text()
    assert "evicted" not in log and "MAX_POLL" not in log and "revoked" not in log, log[-3000:]


def test_a_worker_that_cannot_serve_hands_its_partitions_back(kafka, bootstrap, topics, pool,
                                                              tmp_path):
    # The sick worker's llama-server starts through a wrapper that refuses to
    # start while a flag file exists.
    flag = tmp_path / "broken"
    wrapper = tmp_path / "llama-wrapper.sh"
    wrapper.write_text(f"#!/bin/sh\n[ -e '{flag}' ] && {{ echo 'GPU lost' >&2; exit 1; }}\n"
                       f"exec '{pool.llama_bin}' \"$@\"\n")
    wrapper.chmod(0o755)
    cfg = {**REAL, "kafka.properties": FAST_SESSION, "llama.unready_leave_s": "3",
           "llama.restart_backoff_max_s": "2", "metrics.listen": '"127.0.0.1:0"'}
    sick = pool.start(topics, bootstrap, llama_bin=str(wrapper), **cfg)
    healthy = pool.start(topics, bootstrap, **cfg)
    wait_for(lambda: sick.log_text().count("assigned") >= 2, 30, "the group to settle")
    flag.write_text("")
    os.kill(llama_child(sick), signal.SIGKILL)
    sick.wait_log("left the group: no ready llama-server for 3 s", timeout=30)
    status, body = readyz(sick)
    assert status == 503 and "left the group" in body.get("reason", json.dumps(body)), body

    replies = ReplyTracker(bootstrap, topics["replies"])
    jobs = [job(f"while sick {i}", max_tokens=8) for i in range(40)]
    t0 = time.time()
    Submitter(bootstrap).send(topics["jobs"], jobs)
    ids = [j["id"] for j in jobs]
    replies.wait(ids, timeout=60)
    took = time.time() - t0
    firsts = replies.check_delivery(ids)
    healthy_id = re.search(r"starting as (\S+)", healthy.log_text()).group(1)
    assert all(f["worker"] == healthy_id for f in firsts.values())

    flag.unlink()  # the GPU is back: llama-server starts, the worker rejoins
    sick.wait_log("joining the group again", timeout=30)
    wait_for(lambda: readyz(sick)[0] == 200, 30, "the sick worker ready again")
    print(f"\nsick worker: left 3 s after its llama-server died; 40 jobs done on the healthy "
          f"one in {took:.1f} s; rejoined once llama-server started")
    replies.close()


def test_static_membership(kafka, bootstrap, topics, pool):
    props = "{ session_timeout_ms = 20000; heartbeat_interval_ms = 1000; }"
    cfg = {**REAL, "kafka.static_membership": "true", "kafka.properties": props}
    a = pool.start(topics, bootstrap, **{**cfg, "worker.id": '"static-a"'})
    b = pool.start(topics, bootstrap, **{**cfg, "worker.id": '"static-b"'})
    wait_for(lambda: "assigned 2 partition(s)" in b.log_text()
             and a.log_text().count("assigned") >= 2, 30, "two members, two partitions each")
    b_before = b.log_text().count("assigned")
    # A restart within session.timeout.ms: the same member id comes back and
    # gets its partitions without a rebalance (b sees no revocation).
    a.stop()
    a2 = pool.start(topics, bootstrap, **{**cfg, "worker.id": '"static-a"'})
    assert "assigned 2 partition(s)" in a2.log_text()
    time.sleep(3)
    assert b.log_text().count("assigned") == b_before and "revoked" not in b.log_text()
    replies = ReplyTracker(bootstrap, topics["replies"])
    jobs = [job(f"static {i}", max_tokens=4) for i in range(8)]
    Submitter(bootstrap).send(topics["jobs"], jobs)
    replies.wait([j["id"] for j in jobs], timeout=60)
    # A second member with the same id fences the first: a fatal consumer
    # error, and the fenced worker exits 4 for its service manager.
    twin = pool.start(topics, bootstrap, wait_ready=False, **{**cfg, "worker.id": '"static-a"'})
    fenced = wait_for(lambda: next((w for w in (a2, twin) if w.proc.poll() is not None), None),
                      60, "one of the two static-a members to exit")
    assert fenced.proc.returncode == 4, fenced.log_text()[-2000:]
    assert "fatal consumer error" in fenced.log_text()
    replies.close()


def test_a_poison_job_fails_alone(bootstrap, topics, pool):
    """On the fake llama-server: a real one has no prompt that kills it, and a
    backend that dies on one prompt is the condition tested here."""
    # llama-server dies whenever it generates for the poison prompt, with 3
    # other jobs in flight: the lost runs rerun one at a time, the innocent
    # ones complete, the poison one ends backend_failed after retries + 1 crashes.
    env = {"FAKE_LLAMA_MODE": "die-mid-stream", "FAKE_LLAMA_DIE_AFTER": "2",
           "FAKE_LLAMA_DIE_ON": "POISON", "FAKE_LLAMA_TOKEN_MS": "20",
           "FAKE_LLAMA_TOKENS": "100000"}
    w = pool.start(topics, bootstrap, llama_bin=str(FAKE_LLAMA), env=env,
                   **{"llama.slots": "4", "limits.retries": "2",
                      "llama.restart_backoff_max_s": "1"})
    replies = ReplyTracker(bootstrap, topics["replies"])
    innocent = [job(f"innocent {i}", max_tokens=40) for i in range(3)]
    poison = job("POISON pill", max_tokens=40)
    Submitter(bootstrap).send(topics["jobs"], innocent + [poison], partition=0)
    ids = [j["id"] for j in innocent + [poison]]
    t0 = time.time()
    replies.wait(ids, timeout=90)
    took = time.time() - t0
    replies.settle(1.0)
    firsts = replies.check_delivery([j["id"] for j in innocent])
    for j in innocent:
        assert firsts[j["id"]]["usage"]["completion_tokens"] == 40
    err = replies.first_terminal(poison["id"])
    assert err["code"] == "backend_failed", err
    assert "died in 3 run(s)" in err["message"] and "poison" in err["message"], err
    assert len(replies.runs(poison["id"])) == 3
    assert len(replies.terminals(poison["id"])) == 1
    assert w.proc.poll() is None
    print(f"\npoison: 3 innocent jobs done, the poison one backend_failed after 3 crashes, "
          f"in {took:.1f} s")
