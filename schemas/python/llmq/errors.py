"""llmq.errors — the exceptions of the llmq client library.

    LlmqError                   everything below
    ├── InvalidJob              a job this library refuses to send (code, field, message)
    ├── InvalidReply            bytes that are not a v1 reply
    ├── DeliveryFailed          the broker did not acknowledge a job
    ├── Timeout                 no terminal reply in time (also a TimeoutError)
    ├── ClientClosed            the client closed before the job ended
    └── JobFailed               the worker answered an `error` reply (code, message,
        │                       retryable, run, worker, reply)
        ├── JobRejected         the job was refused as submitted (invalid, too large,
        │                       reply_to denied, model mismatch, context exceeded)
        ├── JobExpired          deadline_ms passed before the job finished
        └── WorkerFailure       llama-server or the worker failed (backend_error,
                                backend_failed, internal)

A JobFailed whose code this library does not know is a plain JobFailed; its
`retryable` (set by the worker) says whether submitting again may help.
"""

from __future__ import annotations


class LlmqError(Exception):
    """Base class of every llmq error."""


class InvalidJob(LlmqError):
    """A job that a v1 worker would reject while decoding it.

    `code` is the wire error code the worker would answer (`invalid_field`,
    `invalid_input`, ...), `field` the job field at fault (None for a
    message that is not a job map at all), and the message starts with the
    field's name, like the worker's."""

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message


class InvalidReply(LlmqError):
    """Bytes that do not decode to a v1 chunk, done, error or heartbeat."""


class DeliveryFailed(LlmqError):
    """The broker did not acknowledge a job; the job was not submitted."""

    def __init__(self, job_id: str, reason: str):
        super().__init__(f"job {job_id}: not delivered to Kafka: {reason}")
        self.job_id = job_id
        self.reason = reason


class Timeout(LlmqError, TimeoutError):
    """No terminal reply arrived in time. The job may still finish later."""


class ClientClosed(LlmqError):
    """The client was closed while the job was still waiting for its reply."""


class JobFailed(LlmqError):
    """The terminal reply of a job was an `error` reply."""

    def __init__(self, reply):
        super().__init__(f"job {reply.id}: {reply.code}: {reply.message}")
        self.reply = reply
        self.job_id = reply.id
        self.code = reply.code
        self.message = reply.message
        self.retryable = reply.retryable
        self.run = reply.run
        self.worker = reply.worker


class JobRejected(JobFailed):
    """The worker refused the job as it was submitted (it never ran)."""


class JobExpired(JobFailed):
    """The job's deadline_ms passed before it finished (code `expired`)."""


class WorkerFailure(JobFailed):
    """llama-server or the worker failed while running the job; retryable."""


_BY_CODE = {
    **dict.fromkeys(("malformed", "unsupported_version", "invalid_id", "invalid_field",
                     "invalid_input", "prompt_too_large", "reply_to_denied", "model_mismatch",
                     "context_exceeded"), JobRejected),
    "expired": JobExpired,
    **dict.fromkeys(("backend_error", "backend_failed", "internal"), WorkerFailure),
}


def job_failed(reply) -> JobFailed:
    """The JobFailed subclass for an Error reply (JobFailed itself for unknown codes)."""
    return _BY_CODE.get(reply.code, JobFailed)(reply)
