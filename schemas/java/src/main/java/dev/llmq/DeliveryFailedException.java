// DeliveryFailedException.java — the broker did not acknowledge a message the client sent.
package dev.llmq;

/** The broker did not acknowledge a job (so it was not submitted) or a cancel message. */
public class DeliveryFailedException extends LlmqException {
  private static final long serialVersionUID = 1L;
  private final String jobId;

  /** The job id the message was for, and the producer's error. */
  public DeliveryFailedException(String jobId, Throwable cause) {
    super("job " + jobId + ": not delivered to Kafka: " + cause, cause);
    this.jobId = jobId;
  }

  /** The id of the job whose message was not delivered. */
  public String jobId() {
    return jobId;
  }
}
