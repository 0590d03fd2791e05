#!/usr/bin/env python3
"""direct_load.py — tokens/s straight to one llama-server (no Kafka, no llmq).

Usage: direct_load.py URL --jobs N --concurrency C --tokens T

Sends N /completion requests of T tokens, C at a time, from threads (stdlib
only: the device machine has no pip), and prints one JSON line:
{"jobs","ok","tokens","wall_s","tokens_per_s"}.
"""

import argparse
import json
import sys
import threading
import time
import urllib.request


def one(url: str, i: int, tokens: int) -> int:
    body = json.dumps({"prompt": f"Job {i}: tell a story about the number {i}.",
                       "n_predict": tokens, "cache_prompt": False}).encode()
    req = urllib.request.Request(url + "/completion", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as resp:
        return int(json.load(resp).get("tokens_predicted", 0))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url")
    p.add_argument("--jobs", type=int, required=True)
    p.add_argument("--concurrency", type=int, required=True)
    p.add_argument("--tokens", type=int, required=True)
    a = p.parse_args()
    next_job, lock, counts = [0], threading.Lock(), {"ok": 0, "tokens": 0, "errors": []}

    def worker() -> None:
        while True:
            with lock:
                i = next_job[0]
                next_job[0] += 1
            if i >= a.jobs:
                return
            try:
                n = one(a.url, i, a.tokens)
                with lock:
                    counts["ok"] += 1
                    counts["tokens"] += n
            except Exception as e:  # reported, never hidden
                with lock:
                    counts["errors"].append(f"job {i}: {e}")

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(a.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    for e in counts["errors"][:5]:
        print(e, file=sys.stderr)
    print(json.dumps({"jobs": a.jobs, "ok": counts["ok"], "tokens": counts["tokens"],
                      "wall_s": round(wall, 3), "tokens_per_s": round(counts["tokens"] / wall, 1)}))
    sys.exit(0 if counts["ok"] == a.jobs else 1)


if __name__ == "__main__":
    main()
