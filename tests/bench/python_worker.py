#!/usr/bin/env python3
"""python_worker.py — the plain Python worker a user would write instead of llmq.

The peer baseline of the benchmarks: a confluent-kafka consumer in a group, one
thread per llama-server slot streaming /completion with http.client, and the same
msgpack chunk and done replies as llmq (wire contract v1, same headers and keys).
A job's offset is committed once its done reply is acknowledged by the broker.
It is honest but naive, like most hand-written workers: prompt jobs only, no
retries, no deadlines, no dead letters, and commits are not kept to the contiguous
done prefix (a crash can lose a job whose later neighbour was committed).

  python_worker.py --bootstrap HOST:PORT --group G --jobs-topic T --reply-topic R \
                   --llama-url http://127.0.0.1:PORT --slots 4

It prints "assigned N partition(s)" when it joins and stops on SIGTERM/SIGINT.
stream_completion() is also the benchmarks' direct HTTP client.
"""
import argparse
import http.client
import json
import signal
import sys
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor

import msgpack
from confluent_kafka import Consumer, Producer, TopicPartition


def completion_body(job, default_max_tokens=512):
    """The /completion request llmq sends for a prompt job (llama_proto.c)."""
    body = {"prompt": job["prompt"], "n_predict": job.get("max_tokens", default_max_tokens),
            "response_fields": ["content", "stop", "stop_type", "tokens_predicted",
                                "tokens_evaluated", "timings"],
            "stream": True, "cache_prompt": True}
    for key in ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "seed", "stop"):
        if key in job:
            body[key] = job[key]
    return json.dumps(body, separators=(",", ":"))


def stream_completion(host, port, body, on_text):
    """POST /completion and stream it: on_text(piece) per token; returns the final event.
    A connection per request: llama-server closes it after a streamed response anyway."""
    conn = http.client.HTTPConnection(host, port, timeout=600)
    try:
        conn.request("POST", "/completion", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"llama-server HTTP {resp.status}: {resp.read()[:200]!r}")
        final = None
        while True:
            line = resp.readline()
            if not line:
                break
            if not line.startswith(b"data: "):
                continue
            event = json.loads(line[6:])
            if event.get("content"):
                on_text(event["content"])
            if event.get("stop"):
                final = event
    finally:
        conn.close()
    if final is None:
        raise RuntimeError("llama-server ended the stream without a final event")
    return final


class PythonWorker:
    def __init__(self, args):
        self.args = args
        self.name = f"pyworker-{uuid.uuid4().hex[:6]}"
        url = urllib.parse.urlparse(args.llama_url)
        self.host, self.port = url.hostname, url.port
        self.stopping = threading.Event()
        common = {"bootstrap.servers": args.bootstrap}
        self.producer = Producer(dict(common, **{"enable.idempotence": True, "linger.ms": 1}))
        self.consumer = Consumer(dict(common, **{
            "group.id": args.group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest"}))

    def reply(self, job_id, message, on_delivery=None):
        self.producer.produce(self.args.reply_topic, msgpack.packb(message), key=job_id,
                              headers=[("llmq-type", message["type"]), ("llmq-id", job_id)],
                              on_delivery=on_delivery)

    def handle(self, msg):
        job = msgpack.unpackb(msg.value())
        job_id, run, seq, pieces = job["id"], uuid.uuid4().hex[:16], 0, []
        start = time.monotonic()
        first = [None]

        def on_text(piece):
            nonlocal seq
            if first[0] is None:
                first[0] = time.monotonic()
            pieces.append(piece)
            self.reply(job_id, {"v": 1, "type": "chunk", "id": job_id, "run": run, "seq": seq,
                                "text": piece})
            seq += 1

        try:
            final = stream_completion(self.host, self.port, completion_body(job), on_text)
            end = time.monotonic()
            gen_ms = (end - first[0]) * 1e3 if first[0] else 0.0
            done = {"v": 1, "type": "done", "id": job_id, "run": run, "text": "".join(pieces),
                    "finish": "stop" if final.get("stop_type") in ("eos", "word") else "length",
                    "usage": {"prompt_tokens": final.get("tokens_evaluated", 0),
                              "completion_tokens": final.get("tokens_predicted", 0)},
                    "timings": {"queue_ms": 0.0,
                                "ttft_ms": (first[0] - start) * 1e3 if first[0] else 0.0,
                                "gen_ms": gen_ms,
                                "tokens_per_s": final.get("tokens_predicted", 0) * 1e3 / gen_ms
                                if gen_ms else 0.0},
                    "worker": self.name}
        except (OSError, RuntimeError, ValueError, http.client.HTTPException) as e:
            done = {"v": 1, "type": "error", "id": job_id, "run": run, "code": "backend_error",
                    "message": str(e), "retryable": True, "worker": self.name}
        offset = [TopicPartition(msg.topic(), msg.partition(), msg.offset() + 1)]

        def committed_after_delivery(err, _msg):
            if err is None:
                self.consumer.commit(offsets=offset, asynchronous=True)
        self.reply(job_id, done, committed_after_delivery)

    def serve_deliveries(self):
        while not self.stopping.is_set():
            self.producer.poll(0.05)

    def run(self):
        slots = threading.BoundedSemaphore(self.args.slots)

        def assigned(_consumer, parts):
            print(f"assigned {len(parts)} partition(s)", file=sys.stderr, flush=True)

        def run_job(msg):
            try:
                self.handle(msg)
            finally:
                slots.release()

        self.consumer.subscribe([self.args.jobs_topic], on_assign=assigned)
        deliveries = threading.Thread(target=self.serve_deliveries, daemon=True)
        deliveries.start()
        with ThreadPoolExecutor(self.args.slots) as pool:  # leaving it waits for the jobs
            while not self.stopping.is_set():
                msg = self.consumer.poll(0.1)
                if msg is None or msg.error():
                    continue
                while not slots.acquire(timeout=0.1):  # every slot busy
                    if self.stopping.is_set():
                        break
                else:
                    pool.submit(run_job, msg)
        self.producer.flush(10)
        self.consumer.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--jobs-topic", required=True)
    p.add_argument("--reply-topic", required=True)
    p.add_argument("--llama-url", required=True)
    p.add_argument("--slots", type=int, default=4)
    worker = PythonWorker(p.parse_args())
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stopping.set())
    worker.run()


if __name__ == "__main__":
    main()
