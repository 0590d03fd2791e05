// ClientCheck.java — the Java client against a real broker and a real llmq-worker, run by
// tests/integration/test_java_client.py: submit, stream, rejected jobs raising their typed
// errors, a batch of 100, and a cancel message. Prints one "ok ..." line per step; any failed
// check throws (exit status 1).
package dev.llmq.it;

import dev.llmq.Cancel;
import dev.llmq.Done;
import dev.llmq.InvalidJobException;
import dev.llmq.Job;
import dev.llmq.JobFailedException;
import dev.llmq.JobFuture;
import dev.llmq.JobStream;
import dev.llmq.LlmqClient;
import dev.llmq.Outcome;
import dev.llmq.StreamEvent;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

public final class ClientCheck {
  private ClientCheck() {}

  static void check(boolean ok, String what) {
    if (!ok) {
      throw new AssertionError(what);
    }
  }

  /** Usage: ClientCheck BOOTSTRAP JOBS_TOPIC REPLY_TOPIC CONTROL_TOPIC BATCH_SIZE */
  public static void main(String[] args) throws Exception {
    try {
      LlmqClient.builder(args[0]).replyTopic(args[2] + ".missing").build().close();
      throw new AssertionError("a client was built on a reply topic that does not exist");
    } catch (dev.llmq.LlmqException e) {
      check(e.getMessage().contains("reply topic"), e.getMessage());
      System.out.println("ok missing-reply-topic");
    }
    try (LlmqClient client = LlmqClient.builder(args[0]).jobsTopic(args[1]).replyTopic(args[2])
        .controlTopic(args[3]).ackTimeout(Duration.ofSeconds(30)).build()) {
      submit(client);
      stream(client);
      rejected(client);
      batch(client, Integer.parseInt(args[4]));
      String id = "cancel-" + System.nanoTime();
      client.cancel(new Cancel(id, null, "integration test")).get(30, TimeUnit.SECONDS);
      System.out.println("ok cancel " + id);
    }
  }

  static void submit(LlmqClient client) throws Exception {
    JobFuture f = client.submit(Job.prompt("Once upon a time").maxTokens(12).seed(3)
        .meta(Map.of("trace", "t-1")).build());
    Done d = f.get(120, TimeUnit.SECONDS);
    check(d.id().equals(f.id()), "done id " + d.id());
    check(!d.text().isEmpty() && d.finish().equals("length"), "done " + d);
    check(d.usage().completionTokens() == 12, "usage " + d.usage());
    check(Map.of("trace", "t-1").equals(d.meta()), "meta " + d.meta());
    check(!d.run().isEmpty() && !d.worker().isEmpty() && d.timings().tokensPerS() > 0, "done " + d);
    System.out.println("ok submit " + d.usage().completionTokens() + " tokens");
  }

  static void stream(LlmqClient client) {
    Job job = Job.messages(List.of(Job.message("user", "Tell a story."))).maxTokens(24).build();
    StringBuilder text = new StringBuilder();
    int pieces = 0;
    try (JobStream s = client.stream(job, Duration.ofSeconds(120))) {
      for (StreamEvent e : s) {
        check(e instanceof StreamEvent.Text, "a restart without a rerun: " + e);
        text.append(((StreamEvent.Text) e).text());
        pieces++;
      }
      check(pieces > 1, "expected the text in several chunks, got " + pieces);
      check(text.toString().equals(s.done().text()), "stream text != done text");
      check(s.done().usage().completionTokens() == 24, "usage " + s.done().usage());
    }
    System.out.println("ok stream " + pieces + " pieces");
  }

  static void rejected(LlmqClient client) throws Exception {
    try {
      client.submit(Job.prompt("Hello").temperature(-1).build());
      throw new AssertionError("temperature -1 was sent");
    } catch (InvalidJobException e) {
      check(e.code().equals("invalid_field") && e.field().equals("temperature"), e.getMessage());
    }
    JobFuture mismatch = client.submit(Job.prompt("Hello").model("no-such-model").build());
    JobFailedException e = failure(mismatch);
    check(e instanceof JobFailedException.JobRejectedException, "type " + e.getClass());
    check(e.code().equals("model_mismatch") && e.retryable() && e.run().isEmpty(), e.getMessage());
    JobFuture late = client.submit(Job.prompt("Too late")
        .deadlineMs(System.currentTimeMillis() - 60_000).meta(Map.of("k", "v")).build());
    e = failure(late);
    check(e instanceof JobFailedException.JobExpiredException, "type " + e.getClass());
    check(e.code().equals("expired") && !e.retryable(), e.getMessage());
    check(Map.of("k", "v").equals(e.reply().meta()), "meta " + e.reply().meta());
    System.out.println("ok rejected model_mismatch expired");
  }

  static JobFailedException failure(JobFuture f) throws Exception {
    try {
      f.get(120, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof JobFailedException j) {
        return j;
      }
      throw e;
    }
    throw new AssertionError("job " + f.id() + " succeeded");
  }

  static void batch(LlmqClient client, int n) throws Exception {
    List<Job> jobs = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      jobs.add(Job.prompt("Job number " + i).maxTokens(4).meta(Map.of("i", i)).build());
    }
    long t0 = System.nanoTime();
    List<JobFuture> futures = client.submitMany(jobs);
    List<Outcome> outcomes = LlmqClient.collect(futures, Duration.ofSeconds(240));
    for (int i = 0; i < n; i++) {
      Outcome o = outcomes.get(i);
      check(o.status() == Outcome.Status.DONE, "job " + i + ": " + o);
      check(o.id().equals(futures.get(i).id()), "order");
      check(((Number) o.done().meta().get("i")).intValue() == i, "meta " + o.done().meta());
      check(o.done().usage().completionTokens() == 4, "usage " + o.done().usage());
    }
    System.out.printf("ok batch %d jobs in %.1f s%n", n, (System.nanoTime() - t0) / 1e9);
  }
}
