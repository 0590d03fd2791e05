// Codec.java — the llmq wire contract v1 (schemas/spec.md) in Java: jobs out, replies in.
package dev.llmq;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Encodes jobs and decodes replies exactly as schemas/spec.md says; no Kafka needed.
 *
 * <ul>
 *   <li>{@link #encodeJob} writes a job's fields in the order of the spec's field table, then
 *       unknown fields in the order given; integers in their smallest form, every float as
 *       float64, String as str, byte[] as bin: the bytes of schemas/vectors.
 *   <li>{@link #validateJob} gives the verdict a worker reaches while decoding (types, ranges,
 *       exactly one of prompt / messages, id length, nesting): the first broken rule in table
 *       order, as an {@link InvalidJobException} with the worker's code and field. {@link
 *       #decodeJob} does the same for bytes. Admission (allowlist, prompt size, model,
 *       deadline) needs the worker's policy and clock and is left to the worker.
 *   <li>{@link #decodeReply} reads a chunk, done, error or heartbeat, checking each field;
 *       unknown fields are ignored. {@link #encodeReply} writes one as the worker does.
 * </ul>
 */
public final class Codec {
  private Codec() {}

  /** The msgpack bytes of a job, after {@link #validateJob}. */
  public static byte[] encodeJob(Job job) {
    return encodeJob(job.toMap());
  }

  /** The msgpack bytes of a job held as a map of fields, after {@link #validateJob}. */
  public static byte[] encodeJob(Map<String, ?> job) {
    validateJob(job);
    Map<String, Object> ordered = Job.ordered(job);
    Msgpack.Writer w = new Msgpack.Writer().map(ordered.size());
    ordered.forEach((k, v) -> w.value(k).value(v));
    return w.bytes();
  }

  /**
   * Throws {@link InvalidJobException} when a v1 worker would reject the job while decoding it:
   * a {@link Job}, or a Map of fields (Java values as {@link Msgpack} lists them).
   */
  public static void validateJob(Object job) {
    JobRules.validate(job instanceof Job j ? j.toMap() : job);
  }

  /** Decodes and validates job bytes as a worker does (without admission). */
  public static Job decodeJob(byte[] data) {
    Object m;
    try {
      m = Msgpack.read(data);
    } catch (Msgpack.MalformedException e) {
      throw JobRules.reject("malformed", null, null, e.getMessage());
    }
    JobRules.validate(m);
    Map<String, Object> fields = new LinkedHashMap<>();
    ((Map<?, ?>) m).forEach((k, v) -> fields.put((String) k, v));
    return Job.fromMap(fields);
  }

  /**
   * Decodes a chunk, done, error or heartbeat. Throws {@link InvalidReplyException} when the bytes
   * are not such a v1 message. Timings and GPU readings come back as doubles whether the writer
   * sent an int or a float.
   */
  public static Reply decodeReply(byte[] data) {
    if (!(readMessage(data) instanceof Map<?, ?> map)) {
      throw new InvalidReplyException("a reply must be a msgpack map");
    }
    Object v = map.get("v");
    if (!JobRules.isInt(v) || ((Number) v).longValue() != Job.VERSION) {
      throw new InvalidReplyException(
          map.containsKey("v") ? "v: must be the integer " + Job.VERSION + " (got " + v + ")"
              : "v: missing");
    }
    Object type = map.get("type");
    if (!(type instanceof String t)) {
      throw new InvalidReplyException("type: not a v1 reply type: " + type);
    }
    return ReplyReader.read(map, t);
  }

  /**
   * The bytes of a cancel message (spec.md, "Cancellation"): v, type, id, then run and reason
   * when given. Throws {@link IllegalArgumentException} naming the field when the cancel breaks
   * the spec's rules (a worker would ignore it).
   */
  public static byte[] encodeCancel(Cancel cancel) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("v", Job.VERSION);
    m.put("type", "cancel");
    m.put("id", cancel.id());
    putIfPresent(m, "run", cancel.run());
    putIfPresent(m, "reason", cancel.reason());
    try {
      return new Msgpack.Writer().value(checkCancel(m)).bytes();
    } catch (InvalidReplyException e) {
      throw new IllegalArgumentException(e.getMessage(), e);
    }
  }

  /**
   * Decodes a control-topic message; throws {@link InvalidReplyException} naming the field when
   * it is not a v1 cancel (a worker ignores such messages). Unknown fields are ignored.
   */
  public static Cancel decodeCancel(byte[] data) {
    Map<?, ?> map = checkCancel(readMessage(data));
    return new Cancel((String) map.get("id"), (String) map.get("run"), (String) map.get("reason"));
  }

  /** One complete msgpack value, or an InvalidReplyException saying why not. */
  private static Object readMessage(byte[] data) {
    try {
      return Msgpack.read(data);
    } catch (Msgpack.MalformedException e) {
      throw new InvalidReplyException(e.getMessage());
    }
  }

  private static Map<?, ?> checkCancel(Object m) {
    if (!(m instanceof Map<?, ?> map) || (map instanceof Msgpack.DecodedMap d
        && (d.oddKeys() || !d.repeated().isEmpty()))) {
      throw new InvalidReplyException("cancel: must be a map with string keys, none twice");
    }
    Object v = map.get("v");
    if (!JobRules.isInt(v) || ((Number) v).longValue() != Job.VERSION) {
      throw new InvalidReplyException("cancel.v: must be the integer " + Job.VERSION);
    }
    if (!"cancel".equals(map.get("type"))) {
      throw new InvalidReplyException("cancel.type: must be \"cancel\"");
    }
    Object id = map.get("id");
    if (JobRules.textProblem(id, true) != null
        || Msgpack.utf8((String) id).length > JobRules.ID_MAX_BYTES) {
      throw new InvalidReplyException("cancel.id: must be a string of 1.."
          + JobRules.ID_MAX_BYTES + " UTF-8 bytes without NUL");
    }
    if (map.containsKey("run") && JobRules.textProblem(map.get("run"), true) != null) {
      throw new InvalidReplyException("cancel.run: must be a non-empty string");
    }
    if (map.containsKey("reason") && JobRules.textProblem(map.get("reason"), false) != null) {
      throw new InvalidReplyException("cancel.reason: must be a string");
    }
    return map;
  }

  /** The bytes a worker writes for a reply: fields in the spec's order, v = 1 first. */
  public static byte[] encodeReply(Reply reply) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("v", Job.VERSION);
    m.put("type", reply.type());
    if (reply instanceof Chunk c) {
      m.put("id", c.id());
      m.put("run", c.run());
      m.put("seq", c.seq());
      m.put("text", c.text());
      putIfPresent(m, "logprobs", logprobsValue(c.logprobs()));
    } else if (reply instanceof Done d) {
      putDone(m, d);
    } else if (reply instanceof ErrorReply e) {
      m.put("id", e.id());
      m.put("run", e.run());
      m.put("code", e.code());
      m.put("message", e.message());
      m.put("retryable", e.retryable());
      m.put("worker", e.worker());
      putIfPresent(m, "partial_text", e.partialText());
      putIfPresent(m, "meta", e.meta());
    } else if (reply instanceof Heartbeat h) {
      putHeartbeat(m, h);
    }
    return new Msgpack.Writer().value(m).bytes();
  }

  private static void putDone(Map<String, Object> m, Done d) {
    m.put("id", d.id());
    m.put("run", d.run());
    m.put("text", d.text());
    putIfPresent(m, "logprobs", logprobsValue(d.logprobs()));
    m.put("finish", d.finish());
    m.put("usage", entries("prompt_tokens", d.usage().promptTokens(),
        "completion_tokens", d.usage().completionTokens()));
    Done.Timings t = d.timings();
    m.put("timings", entries("queue_ms", t.queueMs(), "ttft_ms", t.ttftMs(), "gen_ms", t.genMs(),
        "tokens_per_s", t.tokensPerS()));
    m.put("worker", d.worker());
    putIfPresent(m, "meta", d.meta());
  }

  /** The compact wire form of logprobs (tokens as str or bin, logprobs as float32); null stays. */
  private static List<Object> logprobsValue(List<TokenLogprob> logprobs) {
    if (logprobs == null) {
      return null;
    }
    List<Object> out = new ArrayList<>(logprobs.size());
    for (TokenLogprob e : logprobs) {
      List<Object> top = new ArrayList<>(e.top().size());
      e.top().forEach(a -> top.add(List.of(tokenValue(a.token()), new Msgpack.Float32((float) a.logprob()))));
      out.add(List.of(tokenValue(e.token()), new Msgpack.Float32((float) e.logprob()), top));
    }
    return out;
  }

  private static Object tokenValue(TokenLogprob.Token t) {
    return t.text() != null ? t.text() : t.bin();
  }

  private static void putHeartbeat(Map<String, Object> m, Heartbeat h) {
    Heartbeat.Gpu g = h.gpu();
    m.put("worker", h.worker());
    m.put("host", h.host());
    m.put("model", h.model());
    m.put("state", h.state());
    m.put("ts_ms", h.tsMs());
    m.put("gpu", entries("backend", g.backend(), "name", g.name(),
        "vram_total_bytes", g.vramTotalBytes(), "vram_used_bytes", g.vramUsedBytes(),
        "temp_edge_c", g.tempEdgeC(), "temp_junction_c", g.tempJunctionC(),
        "temp_mem_c", g.tempMemC(), "power_w", g.powerW(), "busy_percent", g.busyPercent()));
    m.put("slots_busy", h.slotsBusy());
    m.put("slots_total", h.slotsTotal());
    Heartbeat.Counters c = h.counters();
    m.put("counters", entries("jobs_done", c.jobsDone(), "jobs_failed", c.jobsFailed(),
        "tokens", c.tokens()));
  }

  /** An ordered map from alternating keys and values (values may be null). */
  private static Map<String, Object> entries(Object... kv) {
    Map<String, Object> m = new LinkedHashMap<>();
    for (int i = 0; i < kv.length; i += 2) {
      m.put((String) kv[i], kv[i + 1]);
    }
    return m;
  }

  private static void putIfPresent(Map<String, Object> m, String key, Object value) {
    if (value != null) {
      m.put(key, value);
    }
  }
}
