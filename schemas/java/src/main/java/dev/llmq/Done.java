// Done.java — the terminal reply of a job that generated (a done reply).
package dev.llmq;

import java.util.Map;

/**
 * A job's result: {@code text} is the whole output of {@code run}. {@code meta} is the job's meta
 * as it came (null when the job had none).
 */
public record Done(
    String id,
    String run,
    String text,
    String finish,
    Usage usage,
    Timings timings,
    String worker,
    Map<Object, Object> meta)
    implements Reply {
  @Override
  public String type() {
    return "done";
  }

  /** Token counts of the run. */
  public record Usage(long promptTokens, long completionTokens) {}

  /**
   * Milliseconds, and tokens per second. queueMs counts from the job's Kafka timestamp, so the
   * producer's clock skew shows in it.
   */
  public record Timings(double queueMs, double ttftMs, double genMs, double tokensPerS) {}
}
