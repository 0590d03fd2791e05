// JobStream.java — the text of one streamed job as an iterator, following the spec's run rule.
package dev.llmq;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The output of one job sent with stream = true, as {@link StreamEvent}s: {@link
 * StreamEvent.Text} pieces as the worker's chunks arrive, in seq order, ending after the terminal
 * reply; then {@link #done()} holds the Done reply. An error reply makes {@code hasNext()} throw
 * the {@link JobFailedException} (after the text that came before it); no reply for the timeout
 * throws {@link LlmqTimeoutException} and stops waiting.
 *
 * <p>Reruns (spec.md, "Reading replies"): a job can run more than once, and only the run named by
 * the terminal reply is the result. The stream follows the newest run: when chunks of a new run
 * arrive, or the terminal reply names a run other than the one being yielded, it yields {@link
 * StreamEvent.Restarted} and then that run's text from its beginning. So the Text pieces after
 * the last Restarted (or from the start, when there was none) always join up to exactly {@code
 * done().text()}; without reruns no Restarted appears.
 *
 * <p>Iterate from one thread. {@link #close()} stops waiting (the job future is cancelled unless
 * it ended).
 */
public final class JobStream implements Iterator<StreamEvent>, Iterable<StreamEvent>, AutoCloseable {
  private static final Object END = new Object();

  private final JobFuture future;
  private final Duration timeout;
  private final BlockingQueue<Object> events = new LinkedBlockingQueue<>();
  private final ArrayDeque<StreamEvent> ready = new ArrayDeque<>();
  private final Map<String, Map<Long, String>> chunks = new HashMap<>(); // run -> seq -> text
  private final StringBuilder yielded = new StringBuilder(); // since the start or last restart
  private String run; // the run whose text is being yielded
  private long nextSeq;
  private boolean ended;
  private Done done;

  /** A stream over the replies of {@code future}'s job; null timeout: wait for ever. */
  JobStream(JobFuture future, Duration timeout) {
    this.future = future;
    this.timeout = timeout;
    future.whenComplete((d, e) -> events.add(END));
  }

  /** Called by the reply thread for each chunk of this job. */
  void offer(Chunk chunk) {
    events.add(chunk);
  }

  /** The job's future (completes with the Done reply or the failure). */
  public JobFuture future() {
    return future;
  }

  /** The job id. */
  public String id() {
    return future.id();
  }

  /** The Done reply, once the stream has ended; null before. */
  public Done done() {
    return done;
  }

  @Override
  public Iterator<StreamEvent> iterator() {
    return this;
  }

  @Override
  public boolean hasNext() {
    while (ready.isEmpty() && !ended) {
      Object event = take();
      if (event == END) {
        ended = true;
        finish(outcome());
      } else {
        chunk((Chunk) event);
      }
    }
    return !ready.isEmpty();
  }

  @Override
  public StreamEvent next() {
    if (!hasNext()) {
      throw new NoSuchElementException("job " + id() + ": the stream has ended");
    }
    return ready.poll();
  }

  /** Stops waiting for the job; its future is cancelled unless it already ended. */
  @Override
  public void close() {
    future.cancel(false);
  }

  private Object take() {
    try {
      Object e = timeout == null ? events.take() : events.poll(timeout.toMillis(), TimeUnit.MILLISECONDS);
      if (e == null) {
        close();
        throw new LlmqTimeoutException("job " + id() + ": no reply for " + timeout);
      }
      return e;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      close();
      throw new LlmqException("job " + id() + ": interrupted while waiting for its replies", e);
    }
  }

  /** The Done reply, or the job's failure thrown as it is. */
  private Done outcome() {
    try {
      return future.join();
    } catch (CompletionException e) {
      throw e.getCause() instanceof RuntimeException r ? r : e;
    } catch (CancellationException e) {
      throw new LlmqException("job " + id() + ": the stream was closed", e);
    }
  }

  private void chunk(Chunk c) {
    boolean newRun = !chunks.containsKey(c.run());
    chunks.computeIfAbsent(c.run(), r -> new HashMap<>()).put(c.seq(), c.text());
    if (newRun && !c.run().equals(run)) {
      switchTo(c.run()); // a newer run: the older one is most likely dead
    }
    if (c.run().equals(run)) {
      catchUp();
    }
  }

  private void switchTo(String newRun) {
    if (run != null) {
      ready.add(new StreamEvent.Restarted(newRun, yielded.toString()));
    }
    run = newRun;
    nextSeq = 0;
    yielded.setLength(0);
  }

  /** Queues the current run's chunks that are next in seq order. */
  private void catchUp() {
    Map<Long, String> mine = chunks.getOrDefault(run, Map.of());
    while (mine.containsKey(nextSeq)) {
      String text = mine.get(nextSeq++);
      yielded.append(text);
      if (!text.isEmpty()) {
        ready.add(new StreamEvent.Text(text));
      }
    }
  }

  private void finish(Done d) {
    if (!d.run().equals(run)) {
      switchTo(d.run());
    }
    catchUp();
    String soFar = yielded.toString();
    if (!d.text().startsWith(soFar)) { // chunks went missing: the done text rules
      switchTo(d.run());
      soFar = "";
    }
    if (d.text().length() > soFar.length()) {
      ready.add(new StreamEvent.Text(d.text().substring(soFar.length())));
    }
    done = d;
  }
}
