"""test_contract.py — the wire contract where only the worker's side shows
(real broker, the fake llama-server; issue 16 points 8 and 9): a chat stream
that ends before its usage chunk still gets a done with counts that are
never negative; a far deadline_ms cannot extend a job past
limits.job_timeout_s; every give-up is a labelled Prometheus counter."""
import re
import time
import urllib.request

from fault_tools import FAKE_LLAMA, ReplyTracker, Submitter, pool  # noqa: F401
from llmq_harness import job


def scrape(worker):
    worker.wait_log("metrics on http://", timeout=30)
    port = re.search(r"metrics on http://\S+ \(port (\d+)\)", worker.log_text()).group(1)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def test_a_chat_stream_without_usage_gets_counts_from_the_stream(bootstrap, topics, pool):
    w = pool.start(topics, bootstrap, llama_bin=str(FAKE_LLAMA),
                   env={"FAKE_LLAMA_NO_USAGE": "1", "FAKE_LLAMA_TOKENS": "6"},
                   **{"metrics.listen": '"127.0.0.1:0"'})
    replies = ReplyTracker(bootstrap, topics["replies"])
    chat = job(messages=[{"role": "user", "content": "Hello"}])
    plain = job("Hello")
    Submitter(bootstrap).send(topics["jobs"], [chat, plain])
    replies.wait([chat["id"], plain["id"]], timeout=60)
    done = replies.check_delivery([chat["id"], plain["id"]])
    # llama-server reported nothing for the chat job: derived, never -1.
    assert done[chat["id"]]["usage"] == {"prompt_tokens": 0, "completion_tokens": 6}, done
    assert done[plain["id"]]["usage"]["completion_tokens"] == 6
    assert done[plain["id"]]["usage"]["prompt_tokens"] > 0
    assert f"job {chat['id']}: llama-server reported no usage" in w.log_text()
    # Every give-up kind is exported, zeros included.
    metrics = scrape(w)
    assert re.search(r'llmq_gave_up_total\{[^}]*what="dead_letter",reason="broker_never_takes"'
                     r'[^}]*\} 0', metrics), metrics
    assert metrics.count("llmq_gave_up_total{") == 13
    w.stop()
    assert w.proc.returncode == 0
    replies.close()


def test_a_far_deadline_cannot_extend_a_job_past_the_job_timeout(bootstrap, topics, pool):
    w = pool.start(topics, bootstrap, llama_bin=str(FAKE_LLAMA),
                   env={"FAKE_LLAMA_TOKENS": "40", "FAKE_LLAMA_TOKEN_MS": "500"},
                   **{"limits.job_timeout_s": "2"})
    replies = ReplyTracker(bootstrap, topics["replies"])
    far = job("Slow", deadline_ms=int(time.time() * 1000) + 3_600_000)
    start = time.monotonic()
    Submitter(bootstrap).send(topics["jobs"], [far])
    replies.wait([far["id"]], timeout=30)
    took = time.monotonic() - start
    err = replies.first_terminal(far["id"])
    assert err["type"] == "error" and err["code"] == "expired", err
    assert "partial_text" in err
    assert took < 8, f"the job ran {took:.1f} s, past limits.job_timeout_s = 2"
    w.stop()
    replies.close()
