// Cancel.java — a cancel message for the control topic (spec.md, "Cancellation").
package dev.llmq;

/**
 * Asks every worker to cancel job {@code id}: only its run {@code run} when that is not null, with
 * {@code reason} (may be null) put into the error reply's message. The job then ends with an
 * error reply of code {@code cancelled}, unless it finished first.
 */
public record Cancel(String id, String run, String reason) {
  /** A cancel of every run of job {@code id}, without a reason. */
  public static Cancel of(String id) {
    return new Cancel(id, null, null);
  }
}
