"""test_stream.py — how a Stream turns the replies of one job (possibly of
several runs) into text, without Kafka: replies are fed the way the client's
reply thread feeds them (chunks on the queue, the terminal reply on the future)."""
import queue

import pytest

from llmq import Chunk, Done, Error, StreamRestarted, Timings, Usage
from llmq.client import JobFuture, Stream
from llmq.errors import JobExpired, JobFailed, Timeout, WorkerFailure, job_failed


def make_stream(timeout=1.0):
    events = queue.SimpleQueue()
    return Stream(JobFuture({"v": 1, "id": "j"}), events, timeout), events


def chunk(run, seq, text):
    return Chunk(id="j", run=run, seq=seq, text=text)


def done(run, text):
    return Done(id="j", run=run, text=text, finish="length", usage=Usage(1, 2),
                timings=Timings(0.0, 1.0, 2.0, 3.0), worker="w")


def feed(stream, events, replies):
    """Queue the replies, then iterate the stream to its end."""
    for r in replies:
        if isinstance(r, Chunk):
            events.put(r)
        elif isinstance(r, Done):
            stream.future._settle(result=r)
        else:
            stream.future._settle(error=job_failed(r))
    return list(stream)


def text_after_last_restart(items):
    last = max((i for i, x in enumerate(items) if isinstance(x, StreamRestarted)), default=-1)
    return "".join(items[last + 1:])


def test_one_run_yields_its_chunks_in_order():
    s, q = make_stream()
    items = feed(s, q, [chunk("a", 0, "Once"), chunk("a", 1, " upon"), chunk("a", 2, ""),
                        done("a", "Once upon")])
    assert items == ["Once", " upon"]
    assert s.done.text == "Once upon"


def test_out_of_order_chunks_wait_for_their_turn():
    s, q = make_stream()
    assert feed(s, q, [chunk("a", 1, "B"), chunk("a", 0, "A"), done("a", "AB")]) == ["A", "B"]


def test_rerun_restarts_once_and_ends_with_the_new_runs_text():
    s, q = make_stream()
    items = feed(s, q, [chunk("a", 0, "Hel"), chunk("a", 1, "lo"),       # run a dies
                        chunk("b", 0, "Hi"), chunk("a", 2, " late"),      # stale a is ignored
                        chunk("b", 1, " there"), done("b", "Hi there")])
    assert items == ["Hel", "lo", StreamRestarted(run="b", discarded="Hello"), "Hi", " there"]
    assert text_after_last_restart(items) == s.done.text


def test_terminal_naming_an_older_run_replays_that_run():
    s, q = make_stream()
    items = feed(s, q, [chunk("a", 0, "x"), chunk("b", 0, "y"), chunk("a", 1, "z"),
                        done("a", "xz")])
    assert items == ["x", StreamRestarted("b", "x"), "y", StreamRestarted("a", "y"), "x", "z"]
    assert text_after_last_restart(items) == "xz"


def test_no_chunks_yields_the_done_text():
    s, q = make_stream()
    assert feed(s, q, [done("a", "all at once")]) == ["all at once"]


def test_missing_tail_chunks_come_from_the_done_text():
    s, q = make_stream()
    assert feed(s, q, [chunk("a", 0, "ab"), done("a", "abcd")]) == ["ab", "cd"]


def test_chunks_that_disagree_with_done_are_replaced():
    s, q = make_stream()
    items = feed(s, q, [chunk("a", 0, "ab"), chunk("a", 2, "zz"), done("a", "xyz")])
    assert items == ["ab", StreamRestarted("a", "ab"), "xyz"]


def error(code, retryable):
    return Error(id="j", run="r", code=code, message=f"{code}: m", retryable=retryable,
                 worker="w")


@pytest.mark.parametrize("code, retryable, cls", [
    ("expired", False, JobExpired), ("backend_failed", True, WorkerFailure),
    ("new_code", False, JobFailed)])
def test_error_reply_raises_after_the_text_so_far(code, retryable, cls):
    s, q = make_stream()
    q.put(chunk("r", 0, "partial"))
    s.future._settle(error=job_failed(error(code, retryable)))
    it = iter(s)
    assert next(it) == "partial"
    with pytest.raises(cls) as e:
        next(it)
    assert (e.value.code, e.value.retryable, e.value.run) == (code, retryable, "r")
    assert type(e.value) is cls


def test_silence_raises_timeout_and_stops_waiting():
    s, _ = make_stream(timeout=0.05)
    with pytest.raises(Timeout):
        list(s)
    assert s.future.cancelled()
