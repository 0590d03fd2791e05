// InvalidReplyException.java — bytes that do not decode to a v1 reply or heartbeat.
package dev.llmq;

/** Bytes that are not a v1 chunk, done, error or heartbeat; the message names the field. */
public class InvalidReplyException extends LlmqException {
  private static final long serialVersionUID = 1L;

  /** The reason, naming the message type and field at fault. */
  public InvalidReplyException(String message) {
    super(message);
  }
}
