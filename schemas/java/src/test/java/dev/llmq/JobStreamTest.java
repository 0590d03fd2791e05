// JobStreamTest.java — how a JobStream turns the replies of one job (possibly of several runs)
// into text, without Kafka: chunks are offered and the future completed the way the client's
// reply thread does it.
package dev.llmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class JobStreamTest {
  private final List<String> cancelled = new ArrayList<>();
  private final JobFuture future = new JobFuture("j", cancelled::add);
  private final JobStream stream = new JobStream(future, Duration.ofSeconds(1));

  static Chunk chunk(String run, long seq, String text) {
    return new Chunk("j", run, seq, text);
  }

  static Done done(String run, String text) {
    return new Done("j", run, text, "length", new Done.Usage(1, 2),
        new Done.Timings(0, 1, 2, 3), "w", null);
  }

  static ErrorReply error(String code, boolean retryable) {
    return new ErrorReply("j", "r", code, code + ": m", retryable, "w", null, null);
  }

  static StreamEvent t(String text) {
    return new StreamEvent.Text(text);
  }

  static StreamEvent restart(String run, String discarded) {
    return new StreamEvent.Restarted(run, discarded);
  }

  /** Offers the replies, then iterates the stream to its end. */
  List<StreamEvent> feed(Reply... replies) {
    for (Reply r : replies) {
      if (r instanceof Chunk c) {
        stream.offer(c);
      } else if (r instanceof Done d) {
        future.complete(d);
      } else {
        future.completeExceptionally(JobFailedException.of((ErrorReply) r));
      }
    }
    List<StreamEvent> out = new ArrayList<>();
    stream.forEach(out::add);
    return out;
  }

  static String textAfterLastRestart(List<StreamEvent> items) {
    StringBuilder b = new StringBuilder();
    for (StreamEvent e : items) {
      if (e instanceof StreamEvent.Restarted) {
        b.setLength(0);
      } else {
        b.append(((StreamEvent.Text) e).text());
      }
    }
    return b.toString();
  }

  @Test
  void oneRunYieldsItsChunksInOrder() {
    assertEquals(List.of(t("Once"), t(" upon")), feed(chunk("a", 0, "Once"),
        chunk("a", 1, " upon"), chunk("a", 2, ""), done("a", "Once upon")));
    assertEquals("Once upon", stream.done().text());
  }

  @Test
  void outOfOrderChunksWaitForTheirTurn() {
    assertEquals(List.of(t("A"), t("B")), feed(chunk("a", 1, "B"), chunk("a", 0, "A"), done("a", "AB")));
  }

  @Test
  void aRerunRestartsOnceAndEndsWithTheNewRunsText() {
    List<StreamEvent> items = feed(chunk("a", 0, "Hel"), chunk("a", 1, "lo"), // run a dies
        chunk("b", 0, "Hi"), chunk("a", 2, " late"), // stale a is ignored
        chunk("b", 1, " there"), done("b", "Hi there"));
    assertEquals(List.of(t("Hel"), t("lo"), restart("b", "Hello"), t("Hi"), t(" there")), items);
    assertEquals(stream.done().text(), textAfterLastRestart(items));
  }

  @Test
  void aTerminalReplyNamingAnOlderRunReplaysThatRun() {
    List<StreamEvent> items = feed(chunk("a", 0, "x"), chunk("b", 0, "y"), chunk("a", 1, "z"),
        done("a", "xz"));
    assertEquals(List.of(t("x"), restart("b", "x"), t("y"), restart("a", "y"), t("x"), t("z")), items);
    assertEquals("xz", textAfterLastRestart(items));
  }

  @Test
  void noChunksYieldsTheDoneText() {
    assertEquals(List.of(t("all at once")), feed(done("a", "all at once")));
  }

  @Test
  void missingTailChunksComeFromTheDoneText() {
    assertEquals(List.of(t("ab"), t("cd")), feed(chunk("a", 0, "ab"), done("a", "abcd")));
  }

  @Test
  void chunksThatDisagreeWithDoneAreReplaced() {
    assertEquals(List.of(t("ab"), restart("a", "ab"), t("xyz")),
        feed(chunk("a", 0, "ab"), chunk("a", 2, "zz"), done("a", "xyz")));
  }

  @Test
  void anErrorReplyIsThrownAfterTheTextSoFar() {
    stream.offer(chunk("r", 0, "partial"));
    future.completeExceptionally(JobFailedException.of(error("expired", false)));
    assertEquals(t("partial"), stream.next());
    JobFailedException e = assertThrows(JobFailedException.class, stream::hasNext);
    assertInstanceOf(JobFailedException.JobExpiredException.class, e);
    assertEquals("expired", e.code());
    assertFalse(e.retryable());
    assertEquals("r", e.run());
  }

  @Test
  void errorCodesPickTheirExceptionType() {
    assertInstanceOf(JobFailedException.WorkerFailureException.class,
        JobFailedException.of(error("backend_failed", true)));
    assertInstanceOf(JobFailedException.JobRejectedException.class,
        JobFailedException.of(error("invalid_field", false)));
    assertInstanceOf(JobFailedException.JobCancelledException.class,
        JobFailedException.of(error("cancelled", false)));
    assertEquals(JobFailedException.class, JobFailedException.of(error("new_code", true)).getClass());
  }

  @Test
  void silenceThrowsTimeoutAndStopsWaiting() {
    JobStream quiet = new JobStream(new JobFuture("q", cancelled::add), Duration.ofMillis(50));
    assertThrows(LlmqTimeoutException.class, quiet::hasNext);
    assertTrue(quiet.future().isCancelled());
    assertTrue(cancelled.isEmpty(), "a timeout only stops waiting; it sends no cancel");
  }

  @Test
  void cancelWithInterruptAsksTheWorkers() {
    assertTrue(future.cancel(true));
    assertEquals(List.of("j"), cancelled);
  }
}
