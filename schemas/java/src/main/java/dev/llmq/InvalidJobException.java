// InvalidJobException.java — a job that a v1 worker would reject while decoding it.
package dev.llmq;

/**
 * The verdict a worker would reach on a job, found before sending it. {@link #code()} is the wire
 * error code (invalid_field, invalid_input, ...), {@link #field()} the job field at fault (null
 * when the message is not a job map at all); the message starts with the field's name, like the
 * worker's.
 */
public class InvalidJobException extends LlmqException {
  private static final long serialVersionUID = 1L;
  private final String code;
  private final String field;

  /** A verdict: the wire code, the field at fault (or null) and the message for people. */
  public InvalidJobException(String code, String field, String message) {
    super(message);
    this.code = code;
    this.field = field;
  }

  /** The wire error code the worker would answer. */
  public String code() {
    return code;
  }

  /** The job field at fault, or null when the message is not a job map. */
  public String field() {
    return field;
  }
}
