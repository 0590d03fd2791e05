#!/usr/bin/env python3
"""sample_job.py — submit one chat job to the local stack and print its tokens
as they stream (used by stack.sh until the llmq CLI is built).
Usage: sample_job.py BOOTSTRAP PROMPT"""
import sys
import time
import uuid

import msgpack
from confluent_kafka import Consumer, Producer, TopicPartition


def main():
    bootstrap, prompt = sys.argv[1], sys.argv[2]
    job_id = f"sample-{uuid.uuid4().hex[:8]}"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": job_id,
                         "enable.auto.commit": False})
    md = consumer.list_topics("llmq.replies", timeout=10).topics["llmq.replies"]
    # Start at the end: only this job's replies matter.
    parts = [TopicPartition("llmq.replies", p) for p in md.partitions]
    ends = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts]
    consumer.assign([TopicPartition("llmq.replies", tp.partition, end)
                     for tp, end in zip(parts, ends)])
    producer = Producer({"bootstrap.servers": bootstrap})
    # The same job as stack.sh's `llmq submit --chat --temperature 0 --max-tokens 96`.
    job = {"v": 1, "id": job_id, "messages": [{"role": "user", "content": prompt}],
           "max_tokens": 96, "temperature": 0, "reply_to": "llmq.replies"}
    producer.produce("llmq.jobs", msgpack.packb(job), key=job_id)
    producer.flush(10)
    print(f"> {prompt}\n", flush=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        reply = msgpack.unpackb(msg.value())
        if reply.get("id") != job_id:
            continue
        if reply["type"] == "chunk":
            print(reply["text"], end="", flush=True)
        elif reply["type"] == "done":
            t = reply["timings"]
            print(f"\n\n[done: {reply['finish']}, {reply['usage']['completion_tokens']} tokens, "
                  f"{t['tokens_per_s']:.1f} tokens/s, first token after {t['ttft_ms']:.0f} ms]")
            return 0
        else:
            print(f"\n[error {reply['code']}: {reply['message']}]")
            return 1
    print("\n[no terminal reply within 300 s]")
    return 1


if __name__ == "__main__":
    sys.exit(main())
