// LlmqClient.java — submit jobs to llmq workers over Kafka and wait for their replies.
package dev.llmq;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Submits v1 jobs and waits for their replies. One client holds one producer (jobs keyed by job
 * id; cancels) and one reply consumer: a thread that reads every partition of the reply topic
 * from where it ended when the client was built (no consumer group), skips replies whose Kafka
 * key is not a job this client waits for, and routes the others to that job's future or stream.
 * The first terminal reply (done or error) of a job decides it; later ones are ignored.
 *
 * <pre>{@code
 * try (LlmqClient client = LlmqClient.builder("127.0.0.1:19092").build()) {
 *   Done done = client.submit(Job.prompt("Once upon a time").maxTokens(32).build()).get();
 * }
 * }</pre>
 *
 * <p>Every job is sent with reply_to = this client's reply topic, so the workers' reply allowlist
 * must allow it unless it is their default reply topic. Replies of jobs submitted before the
 * client was built are not seen; partitions added to the reply topic later are not read.
 */
public final class LlmqClient implements AutoCloseable {
  private static final System.Logger LOG = System.getLogger("dev.llmq");

  private final String jobsTopic;
  private final String replyTopic;
  private final String controlTopic;
  private final Map<String, String> lanes;
  private final Duration ackTimeout;
  private final KafkaProducer<byte[], byte[]> producer;
  private final KafkaConsumer<byte[], byte[]> consumer;
  private final Map<String, Tracker> pending = new ConcurrentHashMap<>();
  private final Thread replies;
  private volatile boolean closing;
  private boolean closed;

  /** What the reply thread needs to know about one job it waits for. */
  private record Tracker(JobFuture future, JobStream stream) {}

  /** A job's map and bytes, checked and ready to send. */
  private record Prepared(String id, byte[] bytes) {}

  private LlmqClient(Builder b) {
    this.jobsTopic = b.jobsTopic;
    this.replyTopic = b.replyTopic;
    this.controlTopic = b.controlTopic;
    this.lanes = Map.copyOf(b.lanes);
    this.ackTimeout = b.ackTimeout;
    this.producer = new KafkaProducer<>(producerProps(b), new ByteArraySerializer(),
        new ByteArraySerializer());
    try {
      this.consumer = new KafkaConsumer<>(consumerProps(b), new ByteArrayDeserializer(),
          new ByteArrayDeserializer());
    } catch (RuntimeException e) {
      producer.close(Duration.ZERO);
      throw e;
    }
    try {
      assignAtEnd();
    } catch (RuntimeException e) {
      consumer.close(Duration.ZERO);
      producer.close(Duration.ZERO);
      throw e;
    }
    this.replies = new Thread(this::readReplies, "llmq-replies");
    replies.setDaemon(true);
    replies.start();
  }

  /** A builder for a client of the brokers at {@code bootstrap} (host:port, comma-separated). */
  public static Builder builder(String bootstrap) {
    return new Builder(bootstrap);
  }

  // ---- submitting ------------------------------------------------------------------------

  /**
   * Sends one job and returns its future at once. The job's id defaults to a fresh random id (give
   * your own to make resubmission idempotent) and its reply_to to this client's reply topic.
   * Throws {@link InvalidJobException} before sending anything when a worker would reject the
   * job; a job the broker does not acknowledge completes its future with {@link
   * DeliveryFailedException}.
   */
  public JobFuture submit(Job job) {
    return submit(job, null);
  }

  /**
   * {@link #submit(Job)} to the jobs topic of a priority lane (a name given to {@link
   * Builder#lane}; null: the jobs topic). An unknown lane is an IllegalArgumentException before
   * anything is sent; the job is the same in every lane.
   */
  public JobFuture submit(Job job, String lane) {
    String topic = laneTopic(lane);
    return send(List.of(prepare(job, false)), null, topic).get(0);
  }

  /**
   * Sends many jobs; returns their futures, in order. All are validated before any is sent: an
   * {@link InvalidJobException} names the index ({@code jobs[3]: temperature: ...}), and an id
   * given twice is an IllegalArgumentException.
   */
  public List<JobFuture> submitMany(List<Job> jobs) {
    return submitMany(jobs, null);
  }

  /** {@link #submitMany(List)} to the jobs topic of a priority lane; see {@link #submit(Job, String)}. */
  public List<JobFuture> submitMany(List<Job> jobs, String lane) {
    String topic = laneTopic(lane);
    List<Prepared> prepared = new ArrayList<>(jobs.size());
    java.util.Set<String> ids = new java.util.HashSet<>();
    for (int i = 0; i < jobs.size(); i++) {
      try {
        prepared.add(prepare(jobs.get(i), false));
      } catch (InvalidJobException e) {
        throw new InvalidJobException(e.code(), e.field(), "jobs[" + i + "]: " + e.getMessage());
      }
      if (!ids.add(prepared.get(i).id)) {
        throw new IllegalArgumentException("jobs[" + i + "]: id " + prepared.get(i).id + " given twice");
      }
    }
    return send(prepared, null, topic);
  }

  /**
   * Sends one job with stream = true and returns its text as a {@link JobStream}; {@code timeout}
   * bounds the silence between two replies (null: wait for ever). A job whose stream is false is
   * an IllegalArgumentException; use {@link #submit}.
   */
  public JobStream stream(Job job, Duration timeout) {
    return stream(job, timeout, null);
  }

  /** {@link #stream(Job, Duration)} to the jobs topic of a priority lane; see {@link #submit(Job, String)}. */
  public JobStream stream(Job job, Duration timeout, String lane) {
    String topic = laneTopic(lane);
    Prepared p = prepare(job, true);
    JobFuture future = newFuture(p.id);
    JobStream stream = new JobStream(future, timeout);
    send(List.of(p), new Tracker(future, stream), topic);
    return stream;
  }

  /**
   * Waits for futures, all within {@code timeout} in total (null: no limit), and returns one
   * {@link Outcome} per future, in order. A job's failure is an Outcome, never an exception.
   */
  public static List<Outcome> collect(List<JobFuture> futures, Duration timeout)
      throws InterruptedException {
    long deadline = timeout == null ? Long.MAX_VALUE : System.nanoTime() + timeout.toNanos();
    List<Outcome> out = new ArrayList<>(futures.size());
    for (JobFuture f : futures) {
      try {
        long left = Math.max(0, deadline - System.nanoTime());
        Done d = timeout == null ? f.get() : f.get(left, TimeUnit.NANOSECONDS);
        out.add(new Outcome(f.id(), Outcome.Status.DONE, d, null));
      } catch (TimeoutException e) {
        out.add(new Outcome(f.id(), Outcome.Status.TIMEOUT, null, null));
      } catch (CancellationException e) {
        out.add(new Outcome(f.id(), Outcome.Status.CANCELLED, null, null));
      } catch (ExecutionException e) {
        out.add(new Outcome(f.id(), Outcome.Status.FAILED, null, e.getCause()));
      }
    }
    return out;
  }

  /**
   * Asks every worker to cancel job {@code id} (a cancel message on the control topic, keyed by
   * the id, spec.md "Cancellation"). The returned future completes when the broker acknowledged
   * the message, or fails with {@link DeliveryFailedException} (the control topic must exist).
   * The job's own future then completes with its terminal reply: a {@code cancelled} error
   * ({@link JobFailedException.JobCancelledException}), or its result when it finished first.
   */
  public CompletableFuture<Void> cancel(String id) {
    return cancel(Cancel.of(id));
  }

  /** Sends a cancel message with an optional run and reason; see {@link #cancel(String)}. */
  public CompletableFuture<Void> cancel(Cancel cancel) {
    byte[] bytes = Codec.encodeCancel(cancel);
    ProducerRecord<byte[], byte[]> rec = new ProducerRecord<>(controlTopic, utf8(cancel.id()), bytes);
    rec.headers().add("llmq-type", utf8("cancel")).add("llmq-id", utf8(cancel.id()));
    CompletableFuture<Void> acked = new CompletableFuture<>();
    produce(rec, cancel.id(), acked, null);
    return acked;
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /**
   * Stops the reply thread, flushes the producer (up to the ack timeout) and fails the jobs still
   * waiting with {@link ClientClosedException}. Safe to call twice.
   */
  @Override
  public void close() {
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
    }
    closing = true;
    consumer.wakeup();
    try {
      replies.join(ackTimeout.toMillis() + 5000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    producer.close(ackTimeout);
    for (Tracker t : pending.values()) {
      t.future.completeExceptionally(
          new ClientClosedException("job " + t.future.id() + ": the client was closed"));
    }
  }

  // ---- internals -----------------------------------------------------------------------

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private String laneTopic(String lane) {
    return laneTopic(lanes, jobsTopic, lane);
  }

  /** The jobs topic of {@code lane} (null: {@code jobsTopic}); unknown: IllegalArgumentException. */
  static String laneTopic(Map<String, String> lanes, String jobsTopic, String lane) {
    if (lane == null) {
      return jobsTopic;
    }
    String topic = lanes.get(lane);
    if (topic == null) {
      throw new IllegalArgumentException("lane " + lane + ": not one of this client's lanes "
          + new java.util.TreeSet<>(lanes.keySet()));
    }
    return topic;
  }

  private Prepared prepare(Job job, boolean stream) {
    Map<String, Object> m = new LinkedHashMap<>(job.toMap());
    m.putIfAbsent("id", UUID.randomUUID().toString().replace("-", ""));
    Object replyTo = m.putIfAbsent("reply_to", replyTopic);
    if (replyTo != null && !replyTo.equals(replyTopic)) {
      throw new IllegalArgumentException("reply_to " + replyTo + ": this client reads its replies"
          + " from " + replyTopic + "; use a client built with that reply topic");
    }
    if (stream && Boolean.FALSE.equals(m.put("stream", true))) {
      throw new IllegalArgumentException("stream(): the job has stream = false; use submit()");
    }
    byte[] bytes = Codec.encodeJob(Job.ordered(m));
    return new Prepared((String) m.get("id"), bytes);
  }

  private JobFuture newFuture(String id) {
    return new JobFuture(id, jobId -> cancel(jobId).exceptionally(e -> {
      LOG.log(System.Logger.Level.WARNING, "job " + jobId + ": cancel not sent: " + e);
      return null;
    }));
  }

  /** Tracks and produces prepared jobs; {@code tracker} is given for a stream's single job. */
  private List<JobFuture> send(List<Prepared> jobs, Tracker tracker, String topic) {
    List<JobFuture> futures = new ArrayList<>(jobs.size());
    for (Prepared p : jobs) {
      Tracker t = tracker != null ? tracker : new Tracker(newFuture(p.id), null);
      track(p.id, t);
      futures.add(t.future);
      ProducerRecord<byte[], byte[]> rec = new ProducerRecord<>(topic, utf8(p.id), p.bytes);
      produce(rec, p.id, t.future.sent(), t.future);
    }
    return futures;
  }

  private void track(String id, Tracker t) {
    if (closing) {
      throw new ClientClosedException("the client is closed");
    }
    if (pending.putIfAbsent(id, t) != null) {
      throw new IllegalStateException("job " + id + ": already waiting for its reply");
    }
    t.future.whenComplete((d, e) -> pending.remove(id, t));
  }

  /** Produces one record; the broker's ack completes {@code acked}, a failure also {@code job}. */
  private void produce(ProducerRecord<byte[], byte[]> rec, String id, CompletableFuture<Void> acked,
      JobFuture job) {
    Consumer<Throwable> fail = err -> {
      DeliveryFailedException failure = new DeliveryFailedException(id, err);
      acked.completeExceptionally(failure);
      if (job != null) {
        job.completeExceptionally(failure);
      }
    };
    try {
      producer.send(rec, (meta, err) -> {
        if (err == null) {
          acked.complete(null);
        } else {
          fail.accept(err);
        }
      });
    } catch (RuntimeException err) { // metadata timeout, closed producer, record too large
      fail.accept(err);
    }
  }

  /** Assigns every partition of the reply topic, each at its current end. */
  private void assignAtEnd() {
    List<PartitionInfo> parts;
    try {
      parts = consumer.partitionsFor(replyTopic, Duration.ofSeconds(10));
    } catch (RuntimeException e) {
      throw new LlmqException("reply topic " + replyTopic + ": " + e.getMessage(), e);
    }
    if (parts == null || parts.isEmpty()) {
      throw new LlmqException("reply topic " + replyTopic + ": not found");
    }
    List<TopicPartition> tps = new ArrayList<>();
    parts.forEach(p -> tps.add(new TopicPartition(replyTopic, p.partition())));
    consumer.assign(tps);
    consumer.seekToEnd(tps);
    tps.forEach(tp -> consumer.position(tp, Duration.ofSeconds(10))); // resolve the ends now
  }

  private void readReplies() {
    try {
      while (!closing) {
        try {
          consumer.poll(Duration.ofMillis(200)).forEach(this::route);
        } catch (org.apache.kafka.common.errors.WakeupException e) {
          break;
        } catch (RuntimeException e) {
          LOG.log(System.Logger.Level.WARNING, "reply topic " + replyTopic + ": " + e);
          sleepQuietly();
        }
      }
    } finally {
      consumer.close(Duration.ofSeconds(5));
    }
  }

  private static void sleepQuietly() {
    try {
      Thread.sleep(500);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /**
   * Hands one reply to the job waiting for it. Replies of other jobs are skipped without decoding
   * (the Kafka key is the job id), and so are chunks of jobs that are not streamed (by the
   * llmq-type header).
   */
  private void route(ConsumerRecord<byte[], byte[]> rec) {
    String id = rec.key() == null ? "" : new String(rec.key(), StandardCharsets.UTF_8);
    Tracker t = pending.get(id);
    if (t == null) {
      return;
    }
    Header type = rec.headers().lastHeader("llmq-type");
    if (t.stream == null && type != null && "chunk".equals(new String(type.value(), StandardCharsets.UTF_8))) {
      return;
    }
    Reply reply;
    try {
      reply = Codec.decodeReply(rec.value() == null ? new byte[0] : rec.value());
    } catch (InvalidReplyException e) {
      LOG.log(System.Logger.Level.WARNING, "job " + id + ": skipping a reply that is not v1: " + e.getMessage());
      return;
    }
    if (reply instanceof Chunk c && c.id().equals(id)) {
      if (t.stream != null) {
        t.stream.offer(c);
      }
    } else if (reply instanceof Done d && d.id().equals(id)) {
      t.future.complete(d);
    } else if (reply instanceof ErrorReply e && e.id().equals(id)) {
      t.future.completeExceptionally(JobFailedException.of(e));
    } else {
      LOG.log(System.Logger.Level.WARNING, "job " + id + ": skipping a " + reply.type()
          + " reply keyed by it but not for it");
    }
  }

  private static Properties producerProps(Builder b) {
    long ackMs = b.ackTimeout.toMillis();
    Properties p = new Properties();
    p.put("bootstrap.servers", b.bootstrap);
    p.put("acks", "all");
    p.put("enable.idempotence", "true");
    p.put("linger.ms", "5");
    p.put("request.timeout.ms", Long.toString(Math.min(30_000, ackMs)));
    p.put("delivery.timeout.ms", Long.toString(ackMs + 5)); // >= linger.ms + request.timeout.ms
    p.put("max.block.ms", Long.toString(ackMs));
    p.putAll(b.kafka);
    return p;
  }

  private static Properties consumerProps(Builder b) {
    Properties p = new Properties();
    p.put("bootstrap.servers", b.bootstrap);
    p.put("enable.auto.commit", "false"); // no group: partitions are assigned, never committed
    p.put("allow.auto.create.topics", "false");
    p.put("auto.offset.reset", "latest");
    p.putAll(b.kafka);
    p.remove("group.id");
    return p;
  }

  /** Options of a client; each setter returns the builder. */
  public static final class Builder {
    private final String bootstrap;
    private String jobsTopic = "llmq.jobs";
    private String replyTopic = "llmq.replies";
    private String controlTopic = "llmq.control";
    private final Map<String, String> lanes = new HashMap<>();
    private Duration ackTimeout = Duration.ofSeconds(30);
    private final Map<String, Object> kafka = new HashMap<>();

    private Builder(String bootstrap) {
      this.bootstrap = bootstrap;
    }

    /** The topic jobs are sent to (a priority lane is a jobs topic); default llmq.jobs. */
    public Builder jobsTopic(String topic) {
      this.jobsTopic = topic;
      return this;
    }

    /**
     * A priority lane: jobs sent with {@code submit(job, name)} (and submitMany, stream) go to
     * {@code topic}, a jobs topic the workers weigh (kafka.lanes), e.g. {@code lane("urgent",
     * "llmq.jobs.urgent")}. Call once per lane.
     */
    public Builder lane(String name, String topic) {
      lanes.put(java.util.Objects.requireNonNull(name), java.util.Objects.requireNonNull(topic));
      return this;
    }

    /** The topic replies are read from, sent as every job's reply_to; default llmq.replies. */
    public Builder replyTopic(String topic) {
      this.replyTopic = topic;
      return this;
    }

    /** The topic cancel messages go to; default llmq.control. */
    public Builder controlTopic(String topic) {
      this.controlTopic = topic;
      return this;
    }

    /** How long the broker may take to acknowledge a job or a cancel; default 30 s. */
    public Builder ackTimeout(Duration timeout) {
      this.ackTimeout = timeout;
      return this;
    }

    /** A Kafka client property for both the producer and the consumer (TLS, SASL, ...). */
    public Builder kafkaProperty(String name, Object value) {
      kafka.put(name, value);
      return this;
    }

    /**
     * The client: connects, finds the reply topic's partitions and their ends. Throws {@link
     * LlmqException} when the reply topic does not exist.
     */
    public LlmqClient build() {
      return new LlmqClient(this);
    }
  }
}
