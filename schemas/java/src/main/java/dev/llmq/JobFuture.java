// JobFuture.java — the outcome of one submitted job: its Done reply, or a typed failure.
package dev.llmq;

import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;

/**
 * Completes with the job's {@link Done} reply, or exceptionally with a {@link JobFailedException}
 * (the worker's error reply), a {@link DeliveryFailedException} (the broker did not take the job)
 * or a {@link ClientClosedException}. The first terminal reply of the job decides it (spec.md,
 * "Reading replies"). {@code get()} wraps these in an ExecutionException, {@code join()} in a
 * CompletionException.
 *
 * <p>{@code cancel(false)} only stops waiting; {@code cancel(true)} also asks the workers to
 * cancel the job (a cancel message on the control topic, see {@link LlmqClient#cancel}).
 */
public final class JobFuture extends CompletableFuture<Done> {
  private final String id;
  private final CompletableFuture<Void> sent = new CompletableFuture<>();
  private final Consumer<String> interrupt;

  JobFuture(String id, Consumer<String> interrupt) {
    this.id = id;
    this.interrupt = interrupt;
  }

  /** The job id (the Kafka key of the job and of its replies). */
  public String id() {
    return id;
  }

  /**
   * Completes when the broker acknowledged the job, or exceptionally with a {@link
   * DeliveryFailedException} (the job future then fails with it too).
   */
  public CompletableFuture<Void> sent() {
    return sent;
  }

  @Override
  public boolean cancel(boolean mayInterruptIfRunning) {
    boolean cancelled = super.cancel(mayInterruptIfRunning);
    if (cancelled && mayInterruptIfRunning) {
      interrupt.accept(id);
    }
    return cancelled;
  }
}
