"""report.py — renders bench.py's results (results.json) as the markdown summary
printed at the end of a run:  python3 report.py results.json"""
import json
import sys

LATENCY_METHOD = """\
Method: one job at a time (no queueing anywhere), after 20 warm-up jobs. Every
timestamp is taken by the benchmark process on one clock (time.perf_counter,
CLOCK_MONOTONIC, ns resolution): t0 just before the job is handed to the producer
(linger.ms 0), t1 when the consumer's poll() returns the job's first chunk reply.
The backend's own time to first token is measured the same way on the same jobs by
a direct HTTP client (request sent -> first content event read). "Added (percentile
difference)" = percentile(t1 - t0) - percentile(direct TTFT): same clock and
precision, but two separate samples, so only p50 is meaningful when the backend's
TTFT has outliers (llama-server answers with Nagle on: a streamed event now and then
waits 40-200 ms for an ACK, whichever client asks). "Added, per job" = (t1 - t0)
minus the ttft_ms the worker wrote into that job's done reply: robust to backend
outliers, but llmq counts ttft_ms in whole milliseconds of its own monotonic clock,
so each value is off by up to +-1 ms (python_worker.py reports fractions). Against
the instant fake the backend's TTFT is ~0.1 ms, so t1 - t0 is all path cost.
"Kafka hop" is one produce -> consume trip through the same broker with the bench's
own clients: the Kafka path has two (job in, chunk out), whatever worker sits
between; the rest is the worker."""


def f(x, digits=1):
    return "-" if x is None else f"{x:,.{digits}f}"


def render(res):
    out = ["## Results", ""]
    m = res.get("machine", {})
    out += [f"Machine: {m.get('cpus')} CPUs ({(m.get('model') or '').strip()}), "
            f"kernel {m.get('kernel')}, {m.get('when')}.",
            f"Load before: `{m.get('uptime')}`; after: `{m.get('uptime_after')}`.", ""]

    tp = res.get("throughput", [])
    if tp:
        out += ["### Throughput: the same jobs, straight to llama-server vs through Kafka", "",
                "| model | jobs x tokens | slots | llama threads | direct tok/s | llmq tok/s | python tok/s "
                "| llmq/direct | python/direct | llmq/python | worker CPU ms per 1k tokens "
                "(llmq / python) |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
        for s in tp:
            per_rep = ", ".join(f"{x:.3f}" for x in s.get("ratio_llmq_direct_per_rep", []))
            out.append(
                f"| {s['model']} | {s['jobs']} x {s['max_tokens']} | {s['slots']} "
                f"| {s.get('threads', 'default')} "
                f"| {f(s.get('direct_tok_s'))} | {f(s.get('llmq_tok_s'))} "
                f"| {f(s.get('python_tok_s'))} "
                f"| **{f(s.get('ratio_llmq_direct_paired_median'), 3)}** paired "
                f"({per_rep}); {f(s.get('ratio_llmq_direct'), 3)} of medians "
                f"| {f(s.get('ratio_python_direct'), 3)} "
                f"| {f(s.get('ratio_llmq_python'), 3)} "
                f"| {f(s.get('llmq_worker_cpu_ms_per_1k_tok'))} / "
                f"{f(s.get('python_worker_cpu_ms_per_1k_tok'))} |")
        out += ["", "llmq/direct: the median of the reps' ratios (each rep runs the modes back "
                "to back), each rep's in brackets, then the ratio of the modes' median rates. "
                "CPU seconds per run, by process:", ""]
        for s in tp:
            for r in s["runs"]:
                cpu = ", ".join(f"{k} {v:.2f}" for k, v in r["cpu"].items()
                                if k not in ("wall", "machine_busy_frac", "others_cores"))
                out.append(f"- {s['model']} rep {r['rep']} {r['mode']}: {r['tokens']} tokens, "
                           f"{r['wall_s']:.2f} s, {r['tok_s']:.1f} tok/s; CPU s: {cpu}; "
                           + (f"{r['messages_per_token']:.3f} reply messages per token; "
                              if "messages_per_token" in r else "") +
                           f"machine busy {r['cpu']['machine_busy_frac'] * 100:.0f}%, "
                           f"other users {r['cpu']['others_cores']:.2f} cores")
        out.append("")

    for lat in res.get("latency", []):
        backend = ("llama-server, tiny model" if lat["backend"] == "tiny"
                   else "the instant C fake (time to first token ~0)")
        out += [f"### Added latency to the first chunk ({backend}; "
                f"{lat['jobs']} jobs, max_tokens {lat['max_tokens']})", "",
                "| measure (ms) | p50 | p95 | p99 |", "|---|---|---|---|"]
        rows = [("direct HTTP time to first token", "direct_ttft_ms"),
                ("Kafka hop (produce -> consume)", "kafka_hop_ms")]
        for kind in ("llmq", "python"):
            if f"{kind}_first_chunk_ms" in lat:
                rows += [(f"{kind}: produce -> first chunk consumed", f"{kind}_first_chunk_ms"),
                         (f"**{kind}: added** (percentile difference)", f"{kind}_added_ms"),
                         (f"{kind}: added, per job (minus reported ttft_ms)",
                          f"{kind}_added_per_job_ms")]
        for label, key in rows:
            v = lat[key]
            out.append(f"| {label} | {f(v['p50'], 2)} | {f(v['p95'], 2)} | {f(v['p99'], 2)} |")
        out.append("")
    if res.get("latency"):
        out += [LATENCY_METHOD, ""]

    paced = res.get("paced", [])
    if paced:
        out += ["### Reply messages per generated token at GPU-like rates (Python fake, paced)", "",
                "| ms per token | stream tok/s (p50) | chunking | messages per token "
                "| worker CPU ms per 1k tokens | first chunk: see the latency stage |",
                "|---|---|---|---|---|---|"]
        for r in paced:
            cpu = r["cpu"].get("worker", 0) * 1e6 / r["tokens"]
            out.append(f"| {r['token_ms']:g} | {r['stream_tok_s_p50']:.0f} | {r['setting']} "
                       f"| {r['messages_per_token']:.3f} | {cpu:.0f} | |")
        out.append("")
    pick = res.get("pickup")
    if pick:
        out += [f"### Pick-up after idle gaps ({pick.get('backend', 'fake')}; produce -> first chunk, ms)", "",
                "| idle gap s | jobs | p50 | max | over 100 ms |", "|---|---|---|---|---|"]
        for gap, v in pick["by_gap"].items():
            out.append(f"| {gap} | {v['n']} | {v['p50']:.1f} | {v['max']:.1f} "
                       f"| {v['over_100ms']} |")
        out.append("")

    ceil = res.get("ceiling", [])
    if ceil:
        out += ["### Worker ceiling against the instant C fake (worker pinned to CPU 0)", "",
                "| worker | jobs x chunks | slots | jobs/s | chunks/s | worker CPU (cores) "
                "| jobs per CPU-s | chunks per CPU-s | CPU ms per 1k chunks | fake / broker CPU "
                "| RSS first / last / max (MiB) | messages per job | context switches per job |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for c in ceil:
            r = c["rss_kb"]
            out.append(
                f"| {c['worker']} | {c['jobs']:,} x {c['tokens_per_job']}"
                f"{'' if c['answered'] >= c['jobs'] else ' (%d answered in time)' % c['answered']}"
                f" | {c['slots']} "
                f"| {f(c['jobs_per_s'], 0)} | {f(c['chunks_per_s'], 0)} "
                f"| {f(c['worker_cpu_frac'], 2)} | {f(c['jobs_per_cpu_s'], 0)} "
                f"| {f(c['chunks_per_cpu_s'], 0)} | {f(c['worker_cpu_ms_per_1k_chunks'], 1)} "
                f"| {f(c['fake_cpu_frac'], 2)} / {f(c['broker_cpu_frac'], 2)} "
                f"| {r['first'] / 1024:.1f} / {r['last'] / 1024:.1f} / {r['max'] / 1024:.1f} "
                f"| {f(c.get('messages_per_job'), 2)} | {f(c.get('ctx_switches_per_job'), 2)} |")
        out += ["", "Rates over the steady window (10% to 90% of the jobs answered, read from the "
                "group's committed offsets); "
                "\"per CPU-s\" divides by the worker's own CPU time (utime+stime), i.e. what "
                "one core would sustain. CPU 0 also runs whatever the scheduler puts there "
                "(the broker is not pinned: it is shared with other users).", ""]
    if res.get("failures"):
        out += ["### Runs that failed", ""] + [f"- {x}" for x in res["failures"]] + [""]
    return "\n".join(out)


if __name__ == "__main__":
    with open(sys.argv[1]) as fh:
        print(render(json.load(fh)))
