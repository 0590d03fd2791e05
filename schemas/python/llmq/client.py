"""llmq.client — submit jobs to llmq workers over Kafka and wait for their replies.

One Client holds one producer (jobs, keyed by job id, acknowledged by the
broker before submit returns) and one reply consumer: a background thread
that reads the reply topic from where it ended when the client started (all
partitions, no consumer group), decodes only the replies whose Kafka key is
a job this client waits for, and routes them to that job's future or stream.

At-least-once delivery is handled as schemas/spec.md says: the first terminal
reply (done or error) of a job decides it; later ones are ignored. A stream
follows the runs of a job as described in Client.stream().

Steering: submit(lane=...) sends a job to the jobs topic of a priority lane;
cancel(id), JobFuture.cancel() and closing a Stream early send a `cancel` to
the control topic, which every worker reads (schemas/spec.md "Cancellation").
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from .codec import VERSION, Chunk, Done, Error, Job, decode_reply, encode_job
from .control import CONTROL_TOPIC, Cancel, encode_cancel
from .errors import (ClientClosed, DeliveryFailed, InvalidJob, InvalidReply, LlmqError, Timeout,
                     job_failed)

log = logging.getLogger("llmq")

JobSpec = Union[Job, Dict[str, Any]]

# librdkafka errors that no retry cures: a refused login or TLS handshake.
_CONNECT_REFUSALS = ("_AUTHENTICATION", "_SSL")


class JobFuture(concurrent.futures.Future):
    """The outcome of one submitted job: result() returns its Done reply or
    raises JobFailed (an error reply), Timeout, DeliveryFailed or ClientClosed.
    It is a concurrent.futures.Future, so concurrent.futures.wait() and
    as_completed() work on it. cancel() stops waiting for the job and asks
    the workers to cancel it (a `cancel` on the control topic, sent without
    waiting for the broker; a failure is logged): a queued job never runs, a
    running one stops. Its `cancelled` error reply is not waited for."""

    def __init__(self, job: Dict[str, Any], client: Optional["Client"] = None):
        super().__init__()
        self.job = job
        self.id: str = job["id"]
        self._client = client

    def cancel(self) -> bool:
        """Cancel the job, here and on the workers; False (nothing sent) when
        its outcome is already known."""
        if self.cancelled():
            return True
        if not super().cancel():
            return False
        if self._client is not None:
            self._client._cancel_later(self.id)
        return True

    def result(self, timeout: Optional[float] = None) -> Done:
        try:
            return super().result(timeout)
        except concurrent.futures.TimeoutError:
            raise Timeout(f"job {self.id}: no terminal reply within {timeout} s") from None

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        try:
            return super().exception(timeout)
        except concurrent.futures.TimeoutError:
            raise Timeout(f"job {self.id}: no terminal reply within {timeout} s") from None

    def _settle(self, result: Optional[Done] = None, error: Optional[BaseException] = None):
        """Set the outcome unless it is already set (or the future was cancelled)."""
        try:
            if error is not None:
                self.set_exception(error)
            else:
                self.set_result(result)
        except concurrent.futures.InvalidStateError:
            pass


@dataclass(frozen=True)
class StreamRestarted:
    """Yielded by a stream instead of text when the text yielded so far is void.

    It happens when a job runs again (llama-server died and the worker retried
    it, or a crashed worker's job was delivered to another one): the text of
    `run` follows from its beginning. `discarded` is the text yielded since
    the start of the stream or since the previous StreamRestarted; a display
    should erase it."""

    run: str
    discarded: str


@dataclass(frozen=True)
class Outcome:
    """One job's result in Client.collect(): status is "done" (done holds the
    reply), "failed" (error holds the LlmqError), "timeout" or "cancelled"."""

    id: str
    status: str
    done: Optional[Done] = None
    error: Optional[BaseException] = None


_END = object()  # put on a stream's queue when its future settles


class Stream:
    """The text of one streamed job, as an iterator; see Client.stream()."""

    def __init__(self, future: JobFuture, events: "queue.SimpleQueue", timeout: Optional[float]):
        self.future = future
        self.id = future.id
        self.done: Optional[Done] = None
        self._events = events
        self._timeout = timeout
        self._chunks: Dict[str, Dict[int, str]] = {}  # run -> seq -> text
        self._run: Optional[str] = None  # the run whose text is being yielded
        self._next_seq = 0
        self._yielded: List[str] = []  # yielded since the start or the last restart
        future.add_done_callback(lambda _: events.put(_END))

    def __iter__(self) -> Iterator[Union[str, StreamRestarted]]:
        try:
            while True:
                try:
                    event = self._events.get(timeout=self._timeout)
                except queue.Empty:
                    raise Timeout(f"job {self.id}: no reply for {self._timeout} s") from None
                if event is _END:
                    yield from self._finish(self.future.result(0))
                    return
                yield from self._chunk(event)
        finally:
            self.close()

    def close(self) -> None:
        """Stop waiting for the job. Unless it ended, its future is cancelled,
        which cancels the job on the workers too (nobody reads its text)."""
        self.future.cancel()

    def _switch(self, run: str) -> Iterator[StreamRestarted]:
        if self._run is not None:
            yield StreamRestarted(run=run, discarded="".join(self._yielded))
        self._run, self._next_seq, self._yielded = run, 0, []

    def _catch_up(self) -> Iterator[str]:
        """Yield the current run's chunks that are next in seq order."""
        chunks = self._chunks.get(self._run, {})
        while self._next_seq in chunks:
            text = chunks[self._next_seq]
            self._next_seq += 1
            self._yielded.append(text)
            if text:
                yield text

    def _chunk(self, chunk: Chunk) -> Iterator[Union[str, StreamRestarted]]:
        new_run = chunk.run not in self._chunks
        self._chunks.setdefault(chunk.run, {})[chunk.seq] = chunk.text
        if new_run and chunk.run != self._run:
            yield from self._switch(chunk.run)  # a newer run: the older one is most likely dead
        if chunk.run == self._run:
            yield from self._catch_up()

    def _finish(self, done: Done) -> Iterator[Union[str, StreamRestarted]]:
        if done.run != self._run:
            yield from self._switch(done.run)
        yield from self._catch_up()
        so_far = "".join(self._yielded)
        if not done.text.startswith(so_far):  # chunks went missing: the done text rules
            yield from self._switch(done.run)
            so_far = ""
        if len(done.text) > len(so_far):
            yield done.text[len(so_far):]
        self.done = done


def _recorder(outcomes: Dict[str, Optional[str]], job_id: str):
    """A delivery callback that stores outcomes[job_id]: None when the broker
    acknowledged the message, else the error."""
    def delivered(err, _msg):
        outcomes[job_id] = None if err is None else str(err)
    return delivered


class _Tracker:
    """What the reply thread needs to know about one job it waits for."""

    __slots__ = ("future", "events")

    def __init__(self, future: JobFuture, events: Optional["queue.SimpleQueue"]):
        self.future = future
        self.events = events


class Client:
    """Submits v1 jobs and waits for their replies.

        with llmq.Client("127.0.0.1:19092") as client:
            done = client.submit("Once upon a time", max_tokens=32).result(timeout=60)
            print(done.text)

    `kafka_config` holds librdkafka properties for both the producer and the
    reply consumer (SASL, TLS, ...): Client(bootstrap, **{"security.protocol": "SSL"}).
    `ack_timeout` bounds how long submit waits for the broker's acknowledgement.

    Every job is sent with reply_to set to this client's reply topic, so the
    workers' reply allowlist must allow it unless it is their default reply
    topic. The reply consumer starts at the end of the reply topic when the
    client is created: replies of jobs submitted earlier are not seen.
    Partitions added to the reply topic later are not read.

    Priority lanes are jobs topics that the workers weigh (kafka.lanes):
    `lanes` maps a lane name to its topic, e.g. {"urgent": "llmq.jobs.urgent"},
    and submit(..., lane="urgent") sends there; without a lane a job goes to
    `jobs_topic`. Cancels go to `control_topic`."""

    def __init__(self, bootstrap: str, jobs_topic: str = "llmq.jobs",
                 reply_topic: str = "llmq.replies", *, ack_timeout: float = 30.0,
                 lanes: Optional[Dict[str, str]] = None, control_topic: str = CONTROL_TOPIC,
                 **kafka_config: Any):
        self.jobs_topic = jobs_topic
        self.reply_topic = reply_topic
        self.lanes: Dict[str, str] = dict(lanes or {})
        self.control_topic = control_topic
        self._ack_timeout = ack_timeout
        self._pending: Dict[str, _Tracker] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._closed = False
        self._refusal: Optional[str] = None  # why the broker refused us, if it did
        kafka_config["error_cb"] = self._error_cb(kafka_config.get("error_cb"))
        self._producer = Producer({
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "linger.ms": 5,
            # A worker fetches a record batch whole and holds it until its
            # last job is read: 64 KiB batches (librdkafka's default is
            # 1 MB) keep a worker's RSS flat (FINDINGS, "cost per job").
            "batch.size": 65536,
            "message.timeout.ms": int(ack_timeout * 1000),
            **kafka_config,
        })
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": f"llmq-client-{uuid.uuid4().hex}",  # required; never joined or committed
            "enable.auto.commit": False,
            **kafka_config,
        })
        try:
            self._consumer.assign(self._reply_partitions())
        except BaseException:
            self._consumer.close()
            # Dropped, not just flushed: the error callback holds self, and a
            # traceback that holds self would keep the producer alive, still
            # reconnecting (with refused credentials, say) until a GC pass.
            self._producer.flush(0)
            self._producer = None
            raise
        self._thread = threading.Thread(target=self._read_replies, name="llmq-replies",
                                        daemon=True)
        self._thread.start()

    # ---- submitting ----------------------------------------------------------

    def submit(self, prompt: Optional[str] = None, messages: Optional[List[Dict[str, Any]]] = None,
               **fields: Any) -> JobFuture:
        """Send one job and return its future once the broker has it.

        `fields` are job fields (max_tokens, temperature, stop, meta,
        logprobs, lora, chunk_ms, ...); None values are left out. `id`
        defaults to a fresh random id; give your own to make resubmission
        idempotent. `lane` (a name in the client's `lanes`) picks the jobs
        topic. Raises InvalidJob (before sending anything) when a worker would
        reject the job's fields, ValueError for an unknown lane, and
        DeliveryFailed when the broker does not acknowledge it."""
        future = self._send([self._prepare(dict(fields, prompt=prompt, messages=messages))])[0]
        if future.done() and isinstance(future.exception(0), DeliveryFailed):
            raise future.exception(0)
        return future

    def submit_many(self, jobs: Iterable[JobSpec]) -> List[JobFuture]:
        """Send many jobs at once; return their futures, in order.

        Each job is a Job or a dict of job fields as submit() takes them
        (prompt or messages, id optional, `lane` too). All are validated before any is
        sent (InvalidJob names the index). A job the broker did not
        acknowledge has a future failed with DeliveryFailed."""
        prepared = []
        for i, spec in enumerate(jobs):
            try:
                prepared.append(self._prepare(spec.to_dict() if isinstance(spec, Job)
                                              else dict(spec)))
            except InvalidJob as e:
                raise InvalidJob(e.code, f"jobs[{i}]: {e.message}", e.field) from None
            except ValueError as e:
                raise ValueError(f"jobs[{i}]: {e}") from None
        return self._send(prepared)

    def stream(self, prompt: Optional[str] = None,
               messages: Optional[List[Dict[str, Any]]] = None, *,
               timeout: Optional[float] = None, **fields: Any) -> Stream:
        """Send one job with stream=true and return an iterator over its text.

        The iterator yields str pieces as the worker's chunk replies arrive,
        and ends after the terminal reply; then `stream.done` holds the Done
        reply. An error reply raises JobFailed; no reply for `timeout`
        seconds (None: wait forever) raises Timeout and stops waiting.

        Reruns. A job can run more than once (see schemas/spec.md): its
        replies then carry several `run` ids, and only the run named by the
        terminal reply is the result. The stream follows the newest run: when
        chunks of a new run arrive, or the terminal reply names a run other
        than the one being yielded, it yields a StreamRestarted (naming the
        run that follows and the text that is void) and then that run's text
        from its beginning. So the str pieces yielded after the last
        StreamRestarted (or from the start, when there was none) always join
        up to exactly `stream.done.text`; without reruns no StreamRestarted
        appears. Use `stream.done.text` for the final text rather than
        joining every item.

            s = client.stream("Once upon a time", max_tokens=64, timeout=60)
            for piece in s:
                if isinstance(piece, llmq.StreamRestarted):
                    print("\\n[restarted]")
                else:
                    print(piece, end="", flush=True)
            print(s.done.finish)
        """
        if fields.get("stream") is False:
            raise ValueError("stream(): the job must have stream=true; use submit() instead")
        prepared = self._prepare(dict(fields, prompt=prompt, messages=messages, stream=True))
        events: "queue.SimpleQueue" = queue.SimpleQueue()
        stream = Stream(self._send([prepared], events)[0], events, timeout)
        error = stream.future.exception(0) if stream.future.done() else None
        if isinstance(error, DeliveryFailed):
            raise error
        return stream

    @staticmethod
    def collect(futures: Iterable[JobFuture], timeout: Optional[float] = None) -> List[Outcome]:
        """Wait for futures, all within `timeout` seconds in total (None: no
        limit), and return one Outcome per future, in order. Never raises
        for a job's failure: the Outcome says it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        outcomes = []
        for future in futures:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                outcomes.append(Outcome(future.id, "done", done=future.result(left)))
            except Timeout:
                outcomes.append(Outcome(future.id, "timeout"))
            except concurrent.futures.CancelledError:
                outcomes.append(Outcome(future.id, "cancelled"))
            except LlmqError as e:
                outcomes.append(Outcome(future.id, "failed", error=e))
        return outcomes

    def cancel(self, job_id: str, run: Optional[str] = None,
               reason: Optional[str] = None) -> None:
        """Ask every worker to cancel job `job_id` (any job, not only this
        client's) and return once the broker has the cancel.

        A queued job is answered without running, a running one is stopped,
        and one not consumed yet is cancelled when a worker takes it; each
        ends with an error reply of code `cancelled` (llmq.errors.JobCancelled,
        with the text generated so far in `partial_text`). A finished or
        unknown id is left alone. With `run`, only that run is stopped, and
        only if it is running. Raises InvalidCancel for an invalid id, run or
        reason and DeliveryFailed when the broker does not acknowledge it. A
        future of this client waiting for the job keeps waiting for that reply
        (JobFuture.cancel() stops waiting at once instead)."""
        outcome: Dict[str, Optional[str]] = {}
        self._produce_cancel(Cancel(job_id, run, reason), _recorder(outcome, job_id))
        if self._producer.flush(self._ack_timeout + 5) > 0 or job_id not in outcome:
            raise DeliveryFailed(job_id, "no acknowledgement of the cancel")
        if outcome[job_id] is not None:
            raise DeliveryFailed(job_id, f"cancel: {outcome[job_id]}")

    # ---- lifecycle -------------------------------------------------------------

    def close(self) -> None:
        """Stop the reply thread, flush the producer, and fail the jobs still
        waiting with ClientClosed. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self._thread.join()
        self._producer.flush(self._ack_timeout)
        with self._lock:
            trackers = list(self._pending.values())
        for t in trackers:
            t.future._settle(error=ClientClosed(f"job {t.future.id}: the client was closed"))

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- internals -------------------------------------------------------------

    def _prepare(self, fields: Dict[str, Any]) -> Tuple[Dict[str, Any], bytes, str]:
        """A complete job map from submit()'s fields, its bytes and its jobs
        topic (InvalidJob when a worker would reject it)."""
        topic = self._lane_topic(fields.pop("lane", None))
        job = {"v": VERSION, "id": fields.pop("id", None) or uuid.uuid4().hex}
        job.update((k, v) for k, v in fields.items() if v is not None)
        reply_to = job.setdefault("reply_to", self.reply_topic)
        if reply_to != self.reply_topic:
            raise ValueError(f"reply_to {reply_to!r}: this client reads its replies from "
                             f"{self.reply_topic!r}; use a Client with that reply_topic")
        return job, encode_job(job), topic

    def _lane_topic(self, lane: Optional[str]) -> str:
        if lane is None:
            return self.jobs_topic
        if lane not in self.lanes:
            raise ValueError(f"lane {lane!r}: not one of this client's lanes "
                             f"{sorted(self.lanes)}")
        return self.lanes[lane]

    def _track(self, job: Dict[str, Any], events) -> JobFuture:
        future = JobFuture(job, self)
        with self._lock:
            if self._closed:
                raise ClientClosed("the client is closed")
            if future.id in self._pending:
                raise ValueError(f"job {future.id}: already waiting for its reply")
            self._pending[future.id] = _Tracker(future, events)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: JobFuture) -> None:
        with self._lock:
            t = self._pending.get(future.id)
            if t is not None and t.future is future:
                del self._pending[future.id]

    def _send(self, jobs: List[Tuple[Dict[str, Any], bytes, str]],
              events=None) -> List[JobFuture]:
        """Track, produce and await the broker's acks for prepared jobs. A job
        whose delivery failed has its future failed with DeliveryFailed."""
        futures, failures = [], {}
        try:
            for job, payload, topic in jobs:
                future = self._track(job, events)
                futures.append(future)
                self._produce(topic, future.id, payload, _recorder(failures, future.id))
        except BaseException:
            for future in futures:  # stop waiting; no cancel: the ids may be submitted again
                concurrent.futures.Future.cancel(future)
            raise
        if self._producer.flush(self._ack_timeout + 5) > 0:
            log.warning("producer still holds undelivered messages after %.0f s",
                        self._ack_timeout + 5)
        for future in futures:
            reason = failures.get(future.id, "")
            if reason is not None:  # None: acknowledged
                future._settle(error=DeliveryFailed(future.id, reason or "no acknowledgement"))
        return futures

    def _produce(self, topic: str, job_id: str, payload: bytes, delivered,
                 headers=None) -> None:
        """Produce one message keyed by job_id; delivered(err, msg) runs on
        the broker's answer."""
        while True:
            try:
                self._producer.produce(topic, payload, key=job_id.encode("utf-8"),
                                       headers=headers, on_delivery=delivered)
                return
            except BufferError:  # the local queue is full: let deliveries drain
                self._producer.poll(0.1)

    def _produce_cancel(self, cancel: Cancel, delivered) -> None:
        """Produce a cancel to the control topic (InvalidCancel when it is bad)."""
        if self._closed:
            raise ClientClosed("the client is closed")
        headers = [("llmq-type", b"cancel"), ("llmq-id", cancel.id.encode("utf-8"))]
        self._produce(self.control_topic, cancel.id, encode_cancel(cancel), delivered, headers)

    def _cancel_later(self, job_id: str) -> None:
        """Send a cancel without waiting for the broker (JobFuture.cancel());
        a failure is logged, as there is nobody left to tell."""
        def delivered(err, _msg):
            if err is not None:
                log.warning("job %s: the cancel was not delivered: %s", job_id, err)

        try:
            self._produce_cancel(Cancel(job_id), delivered)
            self._producer.poll(0)
        except LlmqError as e:
            log.warning("job %s: no cancel sent: %s", job_id, e)

    def _error_cb(self, user_cb):
        """librdkafka's error callback: remember a refused login or TLS handshake,
        then call the caller's own error_cb, if any."""
        def on_error(err):
            if err.name() in _CONNECT_REFUSALS and self._refusal is None:
                self._refusal = err.str()
            if user_cb is not None:
                user_cb(err)
        return on_error

    def _reply_topic_metadata(self, timeout: float = 10.0):
        """The reply topic's metadata; a refused login or TLS handshake ends the
        wait at once with librdkafka's reason, not a transport failure later."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._consumer.list_topics(self.reply_topic, timeout=1)
            except KafkaException as e:
                self._consumer.poll(0)  # serves the error callback
                if self._refusal is not None:
                    raise LlmqError(f"reply topic {self.reply_topic}: the broker refused the "
                                    f"connection: {self._refusal}") from None
                if time.monotonic() >= deadline:
                    raise LlmqError(f"reply topic {self.reply_topic}: {e}") from None

    def _reply_partitions(self) -> List[TopicPartition]:
        """All partitions of the reply topic, each at its current end."""
        md = self._reply_topic_metadata()
        topic = md.topics.get(self.reply_topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise LlmqError(f"reply topic {self.reply_topic}: "
                            f"{topic.error if topic is not None else 'not found'}")
        out = []
        for p in sorted(topic.partitions):
            tp = TopicPartition(self.reply_topic, p)
            _low, high = self._consumer.get_watermark_offsets(tp, timeout=10)
            out.append(TopicPartition(self.reply_topic, p, high))
        return out

    def _read_replies(self) -> None:
        try:
            while not self._stopping.is_set():
                msg = self._consumer.poll(0.1)
                if msg is None:
                    continue
                if msg.error():
                    log.warning("reply topic %s: %s", self.reply_topic, msg.error())
                    continue
                self._route(msg.key(), msg.value())
        finally:
            self._consumer.close()

    def _route(self, key: Optional[bytes], value: Optional[bytes]) -> None:
        """Hand one reply to the job waiting for it; replies of other jobs
        are skipped without decoding (the Kafka key is the job id)."""
        job_id = key.decode("utf-8", "replace") if key else ""
        with self._lock:
            tracker = self._pending.get(job_id)
        if tracker is None:
            return
        try:
            reply = decode_reply(value or b"")
        except InvalidReply as e:
            log.warning("job %s: skipping a reply that is not v1: %s", job_id, e)
            return
        if getattr(reply, "id", None) != job_id:
            log.warning("job %s: skipping a reply keyed by it but for job %r", job_id,
                        getattr(reply, "id", None))
        elif isinstance(reply, Chunk):
            if tracker.events is not None:
                tracker.events.put(reply)
        elif isinstance(reply, Done):
            tracker.future._settle(result=reply)
        elif isinstance(reply, Error):
            tracker.future._settle(error=job_failed(reply))
