#!/usr/bin/env python3
"""bench.py — llmq's cost beside llama-server, and against a plain Python worker.

Run it through tests/bench/run.sh (which builds llmq and finds llama-server, the
models and the broker). Stages (--stages):

  throughput  the same N jobs at concurrency C (= llama-server --parallel C) sent
              (a) straight to llama-server over HTTP by C client threads,
              (b) through Kafka and llmq-worker, (c) through Kafka and python_worker.py;
              aggregate completion tokens/s of each and the ratios b/a, c/a, b/c;
              with the tiny model and the real one (Gemma 3 270M).
  latency     one job at a time: produce -> first chunk consumed, minus llama-server's
              own time to first token; p50/p95/p99 (the method is printed with it).
  paced       the Python fake streaming at GPU-like rates per slot: reply messages per
              generated token and worker CPU per token, for several chunking settings.
  pickup      jobs one at a time after idle gaps: how long an idle worker takes to pick
              a job up (produce -> first chunk).
  ceiling     llmq-worker pinned to CPU 0 against tests/tools/fast_fake_llama.c (pinned
              to CPU 1) streaming instantly: jobs/s, chunks/s, worker CPU per 1,000
              chunks, VmRSS across the run; the same for python_worker.py on fewer jobs.

Every run uses fresh topics (deleted afterwards) on the shared broker, every wait is
bounded, and a table sums it all up at the end; results.json and results.md go to --out.
"""
import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

import rig
from python_worker import completion_body, stream_completion

PROMPTS = [
    "Once upon a time, in a small village by the sea,",
    "The quick brown fox jumps over the lazy dog. Then",
    "In the beginning of the twentieth century, engineers",
    "Here is a short recipe for bread:",
    "The history of the printing press begins",
    "My favourite thing about autumn is",
    "A list of the planets of the solar system:",
    "The train left the station at dawn and",
]


def make_jobs(tag, n, max_tokens):
    return [{"v": 1, "id": f"{tag}-{i}", "prompt": PROMPTS[i % len(PROMPTS)],
             "max_tokens": max_tokens, "temperature": 0.0} for i in range(n)]


def pct(values, p):
    """The p-th percentile (nearest rank) of a non-empty list."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s) + 0.5)) - 1))]


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args):
        self.args = args
        self.out = pathlib.Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.kafka = rig.Kafka(args.bootstrap)
        self.kafka.wait_ready(30)
        self.producer = rig.job_producer(args.bootstrap)
        self.results = {"machine": machine_info(), "args": vars(args)}
        self.runs = 0

    def workdir(self, name):
        self.runs += 1
        return self.out / "runs" / f"{self.runs:03d}-{name}"

    def start_worker(self, kind, topics, url, slots, cpus=None, extra=()):
        if kind == "llmq":
            props = " ".join(f"{k.replace('.', '_')} = \"{v}\";" for k, v in
                             (p.split("=", 1) for p in self.args.llmq_property))
            settings = {"kafka.properties": f"{{ {props} }}"} if props else {}
            settings.update(p.split("=", 1) for p in self.args.llmq_setting)
            settings.update(p.split("=", 1) for p in extra)
            return rig.LlmqWorker(self.workdir("llmq"), self.args.build_dir, self.args.bootstrap,
                                  topics, url, slots, cpus, settings)
        return rig.PyWorker(self.workdir("python"), self.args.bootstrap, topics, url, slots, cpus)

    # ---- throughput ----

    def run_direct(self, server, jobs, concurrency):
        """C client threads, each with a keep-alive connection, share the N jobs."""
        url = urllib.parse.urlparse(server.url)
        pending = list(reversed(jobs))
        lock = threading.Lock()
        done, errors = {}, []

        def client():
            while True:
                with lock:
                    if not pending:
                        return
                    job = pending.pop()
                try:
                    final = stream_completion(url.hostname, url.port, completion_body(job),
                                              lambda _piece: None)
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(repr(e))
                    return
                done[job["id"]] = (rig.now(), final.get("tokens_predicted", 0))

        threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
        with rig.CpuMeter({"llama": server.pid, "broker": rig.broker_pid()}) as meter:
            t0 = rig.now()
            for t in threads:
                t.start()
            for t in threads:
                t.join(self.args.run_timeout)
            cpu = meter.stop()
        if errors or len(done) != len(jobs):
            raise RuntimeError(f"direct run: {len(done)}/{len(jobs)} done; errors: {errors[:3]}")
        wall = max(d[0] for d in done.values()) - t0
        tokens = sum(d[1] for d in done.values())
        return {"mode": "direct", "jobs": len(jobs), "tokens": tokens, "wall_s": wall,
                "tok_s": tokens / wall, "cpu": cpu}

    def run_kafka(self, kind, server, jobs, slots, extra=()):
        """Produce the N jobs at once to a fresh topic; consume replies until all are done."""
        parts = self.args.partitions
        with rig.Topics(self.kafka, parts) as topics:
            worker = self.start_worker(kind, topics, server.url, slots, extra=extra)
            replies = rig.Replies(self.args.bootstrap, topics["replies"], parts)
            try:
                # Warm-up: connections, topic metadata (a producer's first message to a new
                # topic waits for it), llama-server's prompt cache.
                warm = make_jobs(f"warm-{kind}", slots, 4)
                rig.produce_jobs(self.producer, topics["jobs"], warm)
                replies.wait([j["id"] for j in warm], 60)
                messages0 = replies.messages
                with rig.CpuMeter({"llama": server.pid, "worker": worker.pid,
                                   "broker": rig.broker_pid()}) as meter:
                    t0 = rig.now()
                    rig.produce_jobs(self.producer, topics["jobs"], jobs)
                    self.producer.flush(30)
                    replies.wait([j["id"] for j in jobs], self.args.run_timeout)
                    cpu = meter.stop()
            finally:
                worker.stop()
                replies.close()
        measured = [replies.done[j["id"]] for j in jobs]
        wall = max(replies.done_at[j["id"]] for j in jobs) - t0
        tokens = sum(r["usage"]["completion_tokens"] for r in measured if r["type"] == "done")
        bad = [r for r in measured if r["type"] != "done"]
        if bad:
            raise RuntimeError(f"{kind}: {len(bad)} error replies, e.g. {bad[0]}")
        stream_rates = [r["timings"]["tokens_per_s"] for r in measured]
        return {"mode": kind, "jobs": len(jobs), "tokens": tokens, "wall_s": wall,
                "tok_s": tokens / wall, "cpu": cpu,
                "reply_messages": replies.messages - messages0,
                "messages_per_token": (replies.messages - messages0) / tokens,
                "stream_tok_s_p50": pct(stream_rates, 50)}

    def throughput(self, model_name, model_path, n_jobs, max_tokens, slots, reps):
        log(f"throughput [{model_name}]: {n_jobs} jobs x {max_tokens} tokens, "
            f"{slots} slots, {reps} rep(s)")
        argv = rig.llama_server_argv(self.args.llama_server, model_path, slots,
                                     self.args.context, self.args.llama_threads)
        runs = []
        with rig.Server(argv, self.out / f"llama-server-{model_name}.log") as server:
            warm = make_jobs("warm", min(n_jobs, 2 * slots), max_tokens)
            self.run_direct(server, warm, slots)  # caches warm, prompts cached once
            for rep in range(reps):
                for mode in self.args.modes:
                    jobs = make_jobs(f"{model_name}-{rep}-{mode}", n_jobs, max_tokens)
                    try:
                        r = (self.run_direct(server, jobs, slots) if mode == "direct"
                             else self.run_kafka(mode, server, jobs, slots))
                    except Exception as e:  # noqa: BLE001 - one failed run is reported, not fatal
                        log(f"  rep {rep} {mode:6s}: FAILED: {e!r}")
                        self.results.setdefault("failures", []).append(
                            f"throughput {model_name} rep {rep} {mode}: {e!r}")
                        continue
                    r["rep"] = rep
                    runs.append(r)
                    log(f"  rep {rep} {mode:6s}: {r['tokens']} tokens in {r['wall_s']:.2f} s "
                        f"= {r['tok_s']:.1f} tok/s; cpu {fmt_cpu(r['cpu'])}")
        summary = {"model": model_name, "jobs": n_jobs, "max_tokens": max_tokens,
                   "slots": slots, "threads": self.args.llama_threads or "default",
                   "llama_server_argv": argv, "runs": runs}
        for mode in self.args.modes:
            rates = [r["tok_s"] for r in runs if r["mode"] == mode]
            if not rates:
                continue
            summary[f"{mode}_tok_s"] = statistics.median(rates)
            summary[f"{mode}_tok_s_all"] = rates
            cpu = [r["cpu"].get("worker", 0) * 1000 / r["tokens"] for r in runs
                   if r["mode"] == mode]
            summary[f"{mode}_worker_cpu_ms_per_1k_tok"] = statistics.median(cpu) * 1000
        # Ratios of medians, and per rep (each rep runs the modes back to back).
        for a, b in (("llmq", "direct"), ("python", "direct"), ("llmq", "python")):
            if f"{a}_tok_s" in summary and f"{b}_tok_s" in summary:
                summary[f"ratio_{a}_{b}"] = summary[f"{a}_tok_s"] / summary[f"{b}_tok_s"]
                paired = [x["tok_s"] / y["tok_s"] for x in runs if x["mode"] == a
                          for y in runs if y["mode"] == b and y["rep"] == x["rep"]]
                summary[f"ratio_{a}_{b}_per_rep"] = paired
                # The rate drifts between reps by more than the modes differ
                # within one (±10 % here): the median of the paired ratios is
                # the comparison; the ratio of medians mixes reps.
                summary[f"ratio_{a}_{b}_paired_median"] = statistics.median(paired)
        self.results.setdefault("throughput", []).append(summary)

    # ---- latency ----

    def latency_direct(self, server, jobs):
        url = urllib.parse.urlparse(server.url)
        ttft = []
        for job in jobs:
            t0, first = rig.now(), []
            stream_completion(url.hostname, url.port, completion_body(job),
                              lambda _p: first or first.append(rig.now()))
            ttft.append((first[0] - t0) * 1e3)
        return ttft

    def one_job(self, topics, replies, job, timeout, poll_s, what):
        """Produce one job and wait for its done reply: (t0 on the bench clock, done)."""
        t0 = rig.now()
        rig.produce_jobs(self.producer, topics["jobs"], [job])
        deadline = t0 + timeout
        while job["id"] not in replies.done and rig.now() < deadline:
            replies.poll(poll_s)
        self.producer.poll(0)
        done = replies.done.get(job["id"])
        if not done or done["type"] != "done" or job["id"] not in replies.first:
            raise RuntimeError(f"{what}: job {job['id']} got {done}")
        return t0, done

    def latency_kafka(self, kind, server, jobs, warmup):
        """Sequential jobs: produce one, wait for its done reply, then the next."""
        parts = self.args.partitions
        with rig.Topics(self.kafka, parts) as topics:
            worker = self.start_worker(kind, topics, server.url, self.args.slots)
            replies = rig.Replies(self.args.bootstrap, topics["replies"], parts)
            e2e, per_job = [], []
            try:
                for i, job in enumerate(warmup + jobs):
                    t0, done = self.one_job(topics, replies, job, 60, 0.05, kind)
                    if i < len(warmup):
                        continue
                    first_ms = (replies.first[job["id"]] - t0) * 1e3
                    e2e.append(first_ms)
                    per_job.append(first_ms - done["timings"]["ttft_ms"])
            finally:
                worker.stop()
                replies.close()
        return e2e, per_job

    def kafka_hop(self, n):
        """One Kafka hop on the same clients: produce -> consumed by the bench."""
        hops = []
        with rig.Topics(self.kafka, 1) as topics:
            replies = rig.Replies(self.args.bootstrap, topics["replies"], 1)
            try:
                for _ in range(5):
                    replies.poll(0.1)
                for i in range(n + 20):
                    job = {"v": 1, "type": "done", "id": f"hop-{i}"}
                    t0 = rig.now()
                    self.producer.produce(topics["replies"], rig.msgpack.packb(job), key=job["id"])
                    self.producer.poll(0)
                    deadline = t0 + 10
                    while job["id"] not in replies.done and rig.now() < deadline:
                        replies.poll(0.05)
                    if job["id"] not in replies.done:
                        raise RuntimeError("kafka hop: message not consumed in 10 s")
                    if i >= 20:
                        hops.append((replies.done_at[job["id"]] - t0) * 1e3)
            finally:
                replies.close()
        return hops

    def latency(self, backend):
        """backend "tiny": llama-server with the tiny model; "fake": the instant C fake,
        whose time to first token is ~0, so what is left is the path's own cost."""
        n, tokens = self.args.latency_jobs, self.args.latency_tokens
        log(f"latency [{backend}]: {n} sequential jobs x {tokens} tokens per mode")
        if backend == "fake":
            argv = [str(pathlib.Path(self.args.build_dir) / "fast_fake_llama"), "--port", "0",
                    "--tokens", str(tokens), "--exit-after-s", str(self.args.run_timeout * 4)]
        else:
            argv = rig.llama_server_argv(self.args.llama_server, self.args.tiny_model,
                                         self.args.slots, self.args.context)
        res = {"backend": backend, "jobs": n, "max_tokens": tokens}
        with rig.Server(argv, self.out / f"latency-{backend}-server.log") as server:
            warm = make_jobs("lwarm", 20, tokens)
            self.latency_direct(server, warm)
            res["direct_ttft_ms"] = self.latency_direct(server, make_jobs("ld", n, tokens))
            for kind in [m for m in self.args.modes if m != "direct"]:
                e2e, per_job = self.latency_kafka(kind, server, make_jobs(f"l{kind}", n, tokens),
                                                  make_jobs(f"lw{kind}", 20, tokens))
                res[f"{kind}_first_chunk_ms"] = e2e
                res[f"{kind}_added_per_job_ms"] = per_job
        res["kafka_hop_ms"] = self.kafka_hop(n)
        summary = {"backend": backend, "jobs": n, "max_tokens": tokens}
        for key, values in res.items():
            if isinstance(values, list):
                summary[key] = {f"p{p}": pct(values, p) for p in (50, 95, 99)}
        for kind in [m for m in self.args.modes if m != "direct"]:
            summary[f"{kind}_added_ms"] = {
                p: summary[f"{kind}_first_chunk_ms"][p] - summary["direct_ttft_ms"][p]
                for p in ("p50", "p95", "p99")}
        self.results.setdefault("latency", []).append(summary)
        with open(self.out / f"latency-{backend}-samples.json", "w") as f:
            json.dump(res, f)
        log("  " + json.dumps({k: v for k, v in summary.items() if isinstance(v, dict)}))

    # ---- reply messages at GPU-like token rates ----

    def paced(self):
        """The Python fake streams one token every --paced-token-ms per slot (100 tokens/s
        per stream at 10 ms: a 3B model's rate per stream on a GPU with 16 slots), so the
        chunking rules meet GPU-like rates: reply messages per generated token and the
        worker's CPU per 1,000 tokens, for each --paced-setting ("default" = the worker's
        own defaults; else GROUP.KEY=VALUE pairs joined by "+")."""
        slots, n, tokens = self.args.paced_slots, self.args.paced_jobs, self.args.paced_tokens
        fake = rig.ROOT / "tests" / "fakes" / "fake_llama_server.py"
        for token_ms in [float(x) for x in self.args.paced_token_ms.split(",")]:
            argv = [sys.executable, str(fake), "--port", "0", "-np", str(slots),
                    "--fake-tokens", str(tokens), "--fake-token-ms", str(token_ms)]
            with rig.Server(argv, self.out / f"paced-{token_ms:g}.log") as server:
                for setting in self.args.paced_settings.split(";"):
                    extra = [] if setting == "default" else setting.split("+")
                    jobs = make_jobs(f"paced-{token_ms:g}", n, tokens)
                    r = self.run_kafka("llmq", server, jobs, slots, extra=extra)
                    r.update({"setting": setting, "token_ms": token_ms})
                    log(f"  paced {token_ms:g} ms/token [{setting}]: "
                        f"{r['messages_per_token']:.3f} messages/token, stream "
                        f"{r['stream_tok_s_p50']:.0f} tok/s, worker "
                        f"{r['cpu'].get('worker', 0) * 1e6 / r['tokens']:.0f} ms/1k tokens")
                    self.results.setdefault("paced", []).append(r)

    # ---- pick-up on an idle worker ----

    def pickup(self):
        """Jobs one at a time with idle gaps between them (cycling through --pickup-gaps
        seconds) against the instant fake: produce -> first chunk consumed, per gap. The
        latency stage sends the next job as soon as the last is done, so it never sees
        the consumer's idle cycle (its long-poll fetch expiring, fetch.wait.max.ms)."""
        gaps = [float(g) for g in self.args.pickup_gaps.split(",")]
        n = self.args.pickup_jobs
        log(f"pickup: {n} jobs, idle gaps {gaps} s")
        if self.args.pickup_backend == "fake":
            argv = [str(pathlib.Path(self.args.build_dir) / "fast_fake_llama"), "--port", "0",
                    "--tokens", "4", "--exit-after-s", str(self.args.run_timeout * 4)]
        else:
            argv = rig.llama_server_argv(self.args.llama_server, self.args.tiny_model,
                                         self.args.slots, self.args.context)
        res = {"jobs": n, "gaps_s": gaps, "backend": self.args.pickup_backend,
               "first_chunk_ms": {}, "queue_ms": {}}
        with rig.Server(argv, self.out / "pickup-server.log") as server, \
                rig.Topics(self.kafka, self.args.partitions) as topics:
            worker = self.start_worker("llmq", topics, server.url, self.args.slots)
            replies = rig.Replies(self.args.bootstrap, topics["replies"], self.args.partitions)
            try:
                for i, job in enumerate(make_jobs("pickup", n + 3, 4)):
                    gap = gaps[i % len(gaps)]
                    time.sleep(gap)
                    t0, done = self.one_job(topics, replies, job, 10, 0.01, "pickup")
                    if i < 3:
                        continue  # warm-up
                    key = f"{gap:g}"
                    res["first_chunk_ms"].setdefault(key, []).append(
                        (replies.first[job["id"]] - t0) * 1e3)
                    res["queue_ms"].setdefault(key, []).append(done["timings"]["queue_ms"])
            finally:
                worker.stop()
                replies.close()
        summary = {"jobs": n, "backend": self.args.pickup_backend, "by_gap": {
            g: {"n": len(v), "p50": pct(v, 50), "max": max(v),
                "over_100ms": sum(1 for x in v if x > 100)}
            for g, v in res["first_chunk_ms"].items()}}
        self.results["pickup"] = summary
        with open(self.out / "pickup-samples.json", "w") as f:
            json.dump(res, f)
        log("  " + json.dumps(summary))

    # ---- ceiling ----

    def ceiling_run(self, kind, n_jobs, tokens, slots, fake):
        parts = self.args.partitions
        worker_cpus, other_cpus = {0}, {1} if os.cpu_count() > 1 else {0}
        with rig.Topics(self.kafka, parts) as topics:
            log(f"ceiling [{kind}]: producing {n_jobs} jobs")
            rig.produce_jobs(self.producer, topics["jobs"], make_jobs(f"c{kind}", n_jobs, tokens))
            if self.producer.flush(120) != 0:
                raise RuntimeError("ceiling: jobs not acknowledged")
            progress = rig.Offsets(self.args.bootstrap, topics.group, topics["jobs"],
                                   topics["replies"], parts)
            rig.pin(os.getpid(), other_cpus)  # the sampler and this process stay off CPU 0
            worker = self.start_worker(kind, topics, fake.url, slots, worker_cpus)
            samples = []
            try:
                broker = rig.broker_pid()
                deadline = rig.now() + self.args.ceiling_timeout
                sys0 = rig.system_cpu()
                while rig.now() < deadline:
                    # Jobs done = committed offsets (the worker commits a job's offset
                    # once its done reply is acknowledged, within 200 ms): with
                    # coalescing, a job's number of chunk messages varies.
                    done = progress.committed()
                    ctx = rig.ctx_switches(worker.pid) or (0, 0)
                    samples.append({"t": rig.now(), "done": done,
                                    "replies": progress.reply_count(), "committed": done,
                                    "ctx_vol": ctx[0], "ctx_invol": ctx[1],
                                    "cpu": rig.cpu_seconds(worker.pid),
                                    "rss_kb": rig.rss_kb(worker.pid),
                                    "fake_cpu": rig.cpu_seconds(fake.pid),
                                    "broker_cpu": rig.cpu_seconds(broker) if broker else 0})
                    if done >= n_jobs or not worker.alive():
                        break
                    time.sleep(self.args.sample_s)
                busy, total = rig.system_cpu()
            finally:
                worker.stop()
                progress.close()
                rig.pin(os.getpid(), set(range(os.cpu_count())))
        return summarize_ceiling(kind, n_jobs, tokens, slots, samples,
                                 (busy - sys0[0]) / max(1, total - sys0[1]))

    def ceiling(self):
        tokens, slots = self.args.ceiling_tokens, self.args.ceiling_slots
        fake_bin = pathlib.Path(self.args.build_dir) / "fast_fake_llama"
        argv = [str(fake_bin), "--port", "0", "--tokens", str(tokens),
                "--exit-after-s", str(self.args.ceiling_timeout * 3)]
        cpus = {1} if os.cpu_count() > 1 else {0}
        with rig.Server(argv, self.out / "fast-fake.log", cpus=cpus) as fake:
            for kind, n in (("llmq", self.args.ceiling_jobs),
                            ("python", self.args.ceiling_py_jobs)):
                if kind in self.args.modes and n > 0:
                    r = self.ceiling_run(kind, n, tokens, slots, fake)
                    self.results.setdefault("ceiling", []).append(r)
                    log("  " + json.dumps({k: v for k, v in r.items() if k != "samples"}))


def summarize_ceiling(kind, n_jobs, tokens, slots, samples, machine_busy):
    """Rates over the steady part of the run: from 10% to 90% of the jobs answered.
    Jobs done are read from the group's committed offsets, reply messages from the
    reply topic's end offsets (a job's chunk count depends on the chunking)."""
    answered = samples[-1]["done"] if samples else 0
    if len(samples) < 2 or answered == 0:
        raise RuntimeError(f"ceiling {kind}: {answered} of {n_jobs} jobs answered in time")
    # A run cut by the time limit is summed up over what it did, and says so.
    lo = next(s for s in samples if s["done"] >= 0.1 * answered)
    hi = next(s for s in samples if s["done"] >= 0.9 * answered)
    if hi is lo:
        lo, hi = samples[0], samples[-1]
    dt = hi["t"] - lo["t"]
    jobs = hi["done"] - lo["done"]
    # Replies in the window, minus one done reply per job: the chunk messages.
    chunks = (hi["replies"] - lo["replies"]) - jobs
    cpu = hi["cpu"] - lo["cpu"]
    started = next(s for s in samples if s["done"] > 0)
    rss = [s["rss_kb"] for s in samples if s["rss_kb"] and s["t"] >= started["t"]]
    return {
        "worker": kind, "jobs": n_jobs, "answered": answered, "tokens_per_job": tokens,
        "slots": slots,
        "window_s": dt, "jobs_per_s": jobs / dt, "chunks_per_s": chunks / dt,
        "worker_cpu_frac": cpu / dt,
        "jobs_per_cpu_s": jobs / cpu if cpu else None,
        "chunks_per_cpu_s": chunks / cpu if cpu else None,
        "worker_cpu_ms_per_1k_chunks": cpu * 1e3 / chunks * 1000 if chunks else None,
        "messages_per_job": (hi["replies"] - lo["replies"]) / jobs if jobs else None,
        "ctx_switches_per_job": ((hi["ctx_vol"] + hi["ctx_invol"]) -
                                 (lo["ctx_vol"] + lo["ctx_invol"])) / jobs if jobs else None,
        "involuntary_ctx_per_job": (hi["ctx_invol"] - lo["ctx_invol"]) / jobs if jobs else None,
        "fake_cpu_frac": (hi["fake_cpu"] - lo["fake_cpu"]) / dt,
        "broker_cpu_frac": (hi["broker_cpu"] - lo["broker_cpu"]) / dt,
        "machine_busy_frac": machine_busy,
        "total_s": samples[-1]["t"] - started["t"],
        "committed_at_end": samples[-1]["committed"],
        "rss_kb": {"first": rss[0], "last": rss[-1], "max": max(rss), "samples": len(rss)},
        "samples": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in s.items()}
                    for s in samples],
    }


def fmt_cpu(cpu):
    return ", ".join(f"{k} {v:.2f}" for k, v in cpu.items() if k != "wall")


def machine_info():
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"cpus": os.cpu_count(), "model": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
            "kernel": platform.release(), "uptime": sh("uptime"),
            "top": sh("top -bn1 | head -20"), "when": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build-dir", required=True)
    p.add_argument("--llama-server", required=True)
    p.add_argument("--tiny-model", required=True)
    p.add_argument("--real-model", default="")
    p.add_argument("--bootstrap", default="127.0.0.1:19092")
    p.add_argument("--out", required=True)
    p.add_argument("--stages", default="throughput,latency,ceiling")
    p.add_argument("--modes", default="direct,llmq,python")
    p.add_argument("--models", default="tiny,real", help="models of the throughput stage")
    p.add_argument("--slots", type=int, default=4, help="concurrency = llama-server --parallel")
    p.add_argument("--context", type=int, default=4096)
    p.add_argument("--llama-threads", type=int, default=0,
                   help="llama-server --threads in the throughput stage (0: its default)")
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--llmq-property", action="append", default=[], metavar="NAME=VALUE",
                   help="a librdkafka property for llmq-worker (kafka.properties); repeatable")
    p.add_argument("--llmq-setting", action="append", default=[], metavar="GROUP.KEY=VALUE",
                   help="an llmq-worker config setting in libconfig syntax, e.g. "
                        "chunking.coalesce_ms=20; repeatable")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--tiny-jobs", type=int, default=400)
    p.add_argument("--tiny-tokens", type=int, default=32)
    p.add_argument("--real-jobs", type=int, default=16)
    p.add_argument("--real-tokens", type=int, default=32)
    p.add_argument("--latency-jobs", type=int, default=500)
    p.add_argument("--latency-tokens", type=int, default=4)
    p.add_argument("--latency-backends", default="tiny,fake",
                   help="tiny: llama-server with the tiny model; fake: fast_fake_llama")
    p.add_argument("--paced-token-ms", default="20,10,5",
                   help="the paced stage's ms per token per stream (50, 100, 200 tokens/s)")
    p.add_argument("--paced-settings",
                   default="chunking.coalesce_ms=0;chunking.coalesce_ms=20+chunking.coalesce_tokens=0;"
                           "chunking.coalesce_ms=50+chunking.coalesce_tokens=0;default")
    p.add_argument("--paced-slots", type=int, default=16)
    p.add_argument("--paced-jobs", type=int, default=32)
    p.add_argument("--paced-tokens", type=int, default=128)
    p.add_argument("--pickup-jobs", type=int, default=40)
    p.add_argument("--pickup-backend", default="fake", choices=("fake", "tiny"))
    p.add_argument("--pickup-gaps", default="0.05,0.3,0.7,1.3",
                   help="idle seconds before each pickup job, cycled")
    p.add_argument("--ceiling-jobs", type=int, default=100_000)
    p.add_argument("--ceiling-py-jobs", type=int, default=30_000)
    p.add_argument("--ceiling-tokens", type=int, default=10)
    p.add_argument("--ceiling-slots", type=int, default=16)
    p.add_argument("--ceiling-timeout", type=int, default=300)
    p.add_argument("--sample-s", type=float, default=1.0)
    p.add_argument("--run-timeout", type=int, default=600)
    args = p.parse_args()
    args.stages = args.stages.split(",")
    args.modes = args.modes.split(",")
    bench = Bench(args)
    log(f"machine: {bench.results['machine']['uptime']}")
    try:
        if "throughput" in args.stages:
            if "tiny" in args.models:
                bench.throughput("tiny", args.tiny_model, args.tiny_jobs, args.tiny_tokens,
                                 args.slots, args.reps)
            if "real" in args.models and args.real_model:
                bench.throughput("real", args.real_model, args.real_jobs, args.real_tokens,
                                 args.slots, args.reps)
        if "latency" in args.stages:
            for backend in args.latency_backends.split(","):
                bench.latency(backend)
        if "paced" in args.stages:
            bench.paced()
        if "pickup" in args.stages:
            bench.pickup()
        if "ceiling" in args.stages:
            bench.ceiling()
    finally:
        bench.results["machine"]["uptime_after"] = machine_info()["uptime"]
        with open(bench.out / "results.json", "w") as f:
            json.dump(bench.results, f, indent=1)
    import report
    text = report.render(bench.results)
    (bench.out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
