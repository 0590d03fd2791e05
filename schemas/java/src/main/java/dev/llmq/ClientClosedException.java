// ClientClosedException.java — the client was closed while a job still waited for its reply.
package dev.llmq;

/** The client was closed before the job's terminal reply arrived (or before it was sent). */
public class ClientClosedException extends LlmqException {
  private static final long serialVersionUID = 1L;

  /** Which job, or what call, met the closed client. */
  public ClientClosedException(String message) {
    super(message);
  }
}
