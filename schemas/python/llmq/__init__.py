"""llmq — submit generation jobs to llmq workers over Kafka (wire contract v1).

    import llmq
    with llmq.Client("127.0.0.1:19092") as client:
        print(client.submit("Once upon a time", max_tokens=32).result(timeout=60).text)

llmq.codec encodes jobs and decodes replies without Kafka (llmq.replies holds
the reply types), llmq.control the control topic's cancel messages,
llmq.errors the exceptions. See schemas/spec.md for the contract itself.
"""

from . import errors
from .client import Client, JobFuture, Outcome, Stream, StreamRestarted
from .codec import (Chunk, Counters, Done, Error, Gpu, Heartbeat, Job, Timings, TokenLogprob,
                    Usage, decode_job, decode_reply, encode_job, validate_job)
from .control import Cancel, decode_cancel, encode_cancel
from .errors import InvalidJob, JobCancelled, JobFailed, LlmqError, Timeout

__all__ = [
    "Client", "JobFuture", "Outcome", "Stream", "StreamRestarted",
    "Chunk", "Counters", "Done", "Error", "Gpu", "Heartbeat", "Job", "Timings", "TokenLogprob",
    "Usage", "decode_job", "decode_reply", "encode_job", "validate_job",
    "Cancel", "decode_cancel", "encode_cancel",
    "errors", "InvalidJob", "JobCancelled", "JobFailed", "LlmqError", "Timeout",
]
