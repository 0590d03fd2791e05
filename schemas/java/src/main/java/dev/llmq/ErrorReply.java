// ErrorReply.java — the terminal reply of a job that failed or was rejected (an error reply).
package dev.llmq;

import java.util.Map;

/**
 * A failed job: {@code id} is "" when the job's id could not be read, {@code run} is "" when it
 * never ran; {@code meta} is null when the job had none. {@code partialText} is the text the run
 * generated before it was stopped, for {@code expired} and {@code cancelled} errors of a job that
 * was generating; null otherwise.
 */
public record ErrorReply(
    String id,
    String run,
    String code,
    String message,
    boolean retryable,
    String worker,
    String partialText,
    Map<Object, Object> meta)
    implements Reply {
  @Override
  public String type() {
    return "error";
  }
}
