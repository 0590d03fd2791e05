// Done.java — the terminal reply of a job that generated (a done reply).
package dev.llmq;

import java.util.List;
import java.util.Map;

/**
 * A job's result: {@code text} is the whole output of {@code run}. {@code meta} is the job's meta
 * as it came (null when the job had none). {@code logprobs}: one entry per generated token of the
 * run when the job asked for them (null when absent: not asked for, or too large for the broker).
 */
public record Done(
    String id,
    String run,
    String text,
    String finish,
    Usage usage,
    Timings timings,
    String worker,
    Map<Object, Object> meta,
    List<TokenLogprob> logprobs)
    implements Reply {
  /** A done reply without log-probabilities. */
  public Done(String id, String run, String text, String finish, Usage usage, Timings timings,
      String worker, Map<Object, Object> meta) {
    this(id, run, text, finish, usage, timings, worker, meta, null);
  }

  /** Copies logprobs when given. */
  public Done {
    logprobs = logprobs == null ? null : List.copyOf(logprobs);
  }

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
