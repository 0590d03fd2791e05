// JobFailedException.java — the terminal reply of a job was an error reply; the code picks the subclass.
package dev.llmq;

import java.util.Set;

/**
 * The worker answered a job with an {@code error} reply. {@link #code()}, {@link #retryable()} and
 * {@link #run()} come from that reply ({@link #reply()}). A code this library does not know gives
 * a plain JobFailedException: go by {@link #retryable()}, as schemas/spec.md says.
 */
public class JobFailedException extends LlmqException {
  private static final long serialVersionUID = 1L;

  /** Codes of jobs refused as submitted (spec.md, error codes). */
  private static final Set<String> REJECTED =
      Set.of(
          "malformed",
          "unsupported_version",
          "invalid_id",
          "invalid_field",
          "invalid_input",
          "prompt_too_large",
          "reply_to_denied",
          "model_mismatch",
          "context_exceeded");

  /** Codes of failures of llama-server or the worker (spec.md, error codes). */
  private static final Set<String> WORKER = Set.of("backend_error", "backend_failed", "internal");

  private final transient ErrorReply reply;

  /** The exception for an error reply; use {@link #of} to get the subclass for its code. */
  public JobFailedException(ErrorReply reply) {
    super("job " + reply.id() + ": " + reply.code() + ": " + reply.message());
    this.reply = reply;
  }

  /** The JobFailedException subclass for the reply's code (this class for unknown codes). */
  public static JobFailedException of(ErrorReply reply) {
    String code = reply.code();
    if (REJECTED.contains(code)) {
      return new JobRejectedException(reply);
    }
    if (WORKER.contains(code)) {
      return new WorkerFailureException(reply);
    }
    if (code.equals("expired")) {
      return new JobExpiredException(reply);
    }
    if (code.equals("cancelled")) {
      return new JobCancelledException(reply);
    }
    return new JobFailedException(reply);
  }

  /** The error reply itself (worker, meta, ...). */
  public ErrorReply reply() {
    return reply;
  }

  /** The job id. */
  public String jobId() {
    return reply.id();
  }

  /** The wire error code (expired, invalid_field, backend_failed, ...). */
  public String code() {
    return reply.code();
  }

  /** Whether submitting the same job again may succeed (set by the worker). */
  public boolean retryable() {
    return reply.retryable();
  }

  /** The run that failed; "" when the job never ran. */
  public String run() {
    return reply.run();
  }

  /**
   * The text the run generated before it was stopped (an expired or cancelled job that was
   * generating; the run's chunks are a prefix of it), or null when the reply carries none.
   */
  public String partialText() {
    return reply.partialText();
  }

  /** The worker's message for people; it names the field at fault. */
  public String workerMessage() {
    return reply.message();
  }

  /** The job was refused as submitted: it never ran. */
  public static class JobRejectedException extends JobFailedException {
    private static final long serialVersionUID = 1L;

    JobRejectedException(ErrorReply reply) {
      super(reply);
    }
  }

  /** The job's deadline_ms passed before it finished (code expired). */
  public static class JobExpiredException extends JobFailedException {
    private static final long serialVersionUID = 1L;

    JobExpiredException(ErrorReply reply) {
      super(reply);
    }
  }

  /** The job was cancelled on request (code cancelled). */
  public static class JobCancelledException extends JobFailedException {
    private static final long serialVersionUID = 1L;

    JobCancelledException(ErrorReply reply) {
      super(reply);
    }
  }

  /** llama-server or the worker failed while running the job; these codes are retryable. */
  public static class WorkerFailureException extends JobFailedException {
    private static final long serialVersionUID = 1L;

    WorkerFailureException(ErrorReply reply) {
      super(reply);
    }
  }
}
