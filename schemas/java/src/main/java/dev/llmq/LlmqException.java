// LlmqException.java — the base class of every exception this library throws.
package dev.llmq;

/**
 * Everything the llmq client throws or completes a future with derives from this class. The
 * hierarchy:
 *
 * <pre>
 * LlmqException
 * ├── InvalidJobException       a job this library refuses to send (code, field, message)
 * ├── InvalidReplyException     bytes that are not a v1 reply
 * ├── DeliveryFailedException   the broker did not acknowledge a job or a cancel
 * ├── LlmqTimeoutException      no reply in time (a stream's silence)
 * ├── ClientClosedException     the client closed before the job ended
 * └── JobFailedException        the worker answered an error reply (code, retryable, run)
 *     ├── JobRejectedException  refused as submitted (invalid, too large, denied, mismatch)
 *     ├── JobExpiredException   deadline_ms passed (code expired)
 *     ├── JobCancelledException cancelled on request (code cancelled)
 *     └── WorkerFailureException  llama-server or the worker failed (retryable codes)
 * </pre>
 */
public class LlmqException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** An error with a message for people. */
  public LlmqException(String message) {
    super(message);
  }

  /** An error with a message and its cause. */
  public LlmqException(String message, Throwable cause) {
    super(message, cause);
  }
}
