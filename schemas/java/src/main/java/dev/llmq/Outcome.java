// Outcome.java — one job's result in a batch (LlmqClient.collect): done, failed, timeout or cancelled.
package dev.llmq;

/**
 * The result of one job of a batch: {@code status} DONE ({@code done} holds the reply), FAILED
 * ({@code error} holds the exception: a {@link JobFailedException}, {@link
 * DeliveryFailedException} or {@link ClientClosedException}), TIMEOUT or CANCELLED.
 */
public record Outcome(String id, Status status, Done done, Throwable error) {
  /** How a job of a batch ended, as far as the caller waited. */
  public enum Status {
    DONE,
    FAILED,
    TIMEOUT,
    CANCELLED
  }
}
