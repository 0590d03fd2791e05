// LlmqTimeoutException.java — no reply arrived in time; the job may still finish later.
package dev.llmq;

/** No reply arrived within the time given; the job itself may still run and finish. */
public class LlmqTimeoutException extends LlmqException {
  private static final long serialVersionUID = 1L;

  /** What was waited for, and for how long. */
  public LlmqTimeoutException(String message) {
    super(message);
  }
}
