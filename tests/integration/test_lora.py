"""test_lora.py — LoRA per job (issue 13 point 5) on the real broker and the
real llama-server the worker starts, with the tiny model and its random LoRA
adapter (deploy/local/models.sh tiny-lora): the worker loads it from
`llama.lora`, a job's `lora` applies it (llama-server's /slots shows the scale
the request carried, and the text differs from the base model's), a job
without `lora` is the base model (also right after one with it), and an
unknown adapter name is `invalid_field` without running.

The child llama-server wants the worker's per-start API key; the test reads it
from the child's environment (/proc), as only the same user can."""
import json
import os
import re
import urllib.request

from llmq_harness import Replies, job

KEY_ENV = b"LLAMA_API_KEY="  # worker/llama_child.h LLAMA_CHILD_KEY_ENV


def child_slots(w):
    """The worker's llama-server's /slots, with the key from the child's environment."""
    port = re.search(r"listening on http://127\.0\.0\.1:(\d+)", w.log_text()).group(1)
    children = [p for p in os.listdir("/proc") if p.isdigit() and _ppid(p) == w.proc.pid]
    keys = [v[len(KEY_ENV):].decode() for p in children
            for v in open(f"/proc/{p}/environ", "rb").read().split(b"\0") if v.startswith(KEY_ENV)]
    assert len(keys) == 1, f"expected one llama-server child with a key, got {len(keys)}"
    req = urllib.request.Request(f"http://127.0.0.1:{port}/slots",
                                 headers={"Authorization": f"Bearer {keys[0]}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def _ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1


def run_one(kafka, topics, replies, w, jid, **fields):
    """Submit one job, wait for its terminal reply; return it and the slot's lora."""
    kafka.submit(topics["jobs"], job("Once upon a time", id=jid, max_tokens=16, temperature=0,
                                     seed=7, **fields))
    end = replies.wait_terminal([jid], timeout=60)[jid]
    (slot,) = child_slots(w)  # one slot: its last task is this job's
    return end, [(e["id"], e["scale"]) for e in slot["params"]["lora"]]


def test_lora_per_job(kafka, topics, start_worker, tiny_lora):
    w = start_worker(**{"llama.slots": "1", "llama.lora": f'["tiny={tiny_lora}"]'})
    w.wait_log("listening on http://", timeout=10)
    replies = Replies(kafka, topics["replies"])
    try:
        base, base_lora = run_one(kafka, topics, replies, w, "base-1")
        tuned, tuned_lora = run_one(kafka, topics, replies, w, "lora-1",
                                    lora=[{"name": "tiny", "scale": 1.0}])
        again, again_lora = run_one(kafka, topics, replies, w, "base-2")
        for end in (base, tuned, again):
            assert end["type"] == "done", end
        print(f"\nbase: {base['text']!r}\nlora: {tuned['text']!r}\nbase: {again['text']!r}")
        assert tuned["text"] != base["text"]
        assert again["text"] == base["text"]
        # what the requests carried: a job without lora sends the adapter at 0, since
        # llama-server would apply it at 1.0 (and keep the slot's cache) otherwise
        assert tuned_lora == [(0, 1.0)]
        assert base_lora == [(0, 0.0)] and again_lora == [(0, 0.0)]

        kafka.submit(topics["jobs"], job("x", id="lora-unknown", lora=[{"name": "nope"}]))
        bad = replies.wait_terminal(["lora-unknown"], timeout=60)["lora-unknown"]
        assert bad["type"] == "error" and bad["code"] == "invalid_field", bad
        assert "nope" in bad["message"] and bad["retryable"] is False, bad
        assert not replies.chunks("lora-unknown", bad.get("run") or "")
    finally:
        replies.close()
