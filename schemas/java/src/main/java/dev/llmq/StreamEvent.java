// StreamEvent.java — what a JobStream yields: a piece of text, or the signal that a rerun began.
package dev.llmq;

/**
 * An item of a {@link JobStream}: the next piece of {@link Text}, or {@link Restarted} when the
 * text yielded so far is void because the job runs again (see {@link JobStream}).
 */
public sealed interface StreamEvent permits StreamEvent.Text, StreamEvent.Restarted {
  /** The next piece of output of the run being followed (never empty). */
  record Text(String text) implements StreamEvent {}

  /**
   * The job runs again, or the terminal reply named another run: the text of {@code run} follows
   * from its beginning. {@code discarded} is the text yielded since the start of the stream or
   * the previous Restarted; a display should erase it.
   */
  record Restarted(String run, String discarded) implements StreamEvent {}
}
