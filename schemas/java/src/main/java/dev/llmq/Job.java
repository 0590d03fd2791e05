// Job.java — a v1 job as a value, built field by field; the map the codec encodes.
package dev.llmq;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A v1 job (schemas/spec.md, "Job"): an immutable map of its fields, known ones in the order of
 * the spec's field table, then fields this version does not know in the order given. Build one
 * with {@link #prompt(String)}, {@link #messages(List)} or {@link #builder()}:
 *
 * <pre>{@code
 * Job job = Job.prompt("Once upon a time").maxTokens(32).temperature(0.7)
 *     .meta(Map.of("trace", "t-1")).build();
 * }</pre>
 *
 * <p>Building does not validate; {@link Codec#validateJob} and every send do. {@code id} and
 * {@code reply_to} may be left out: the client fills them in. A field set to null is left out.
 */
public final class Job {
  /** The job fields, in the order of the field table in schemas/spec.md. */
  public static final List<String> FIELDS =
      List.of(
          "v", "id", "prompt", "messages", "max_tokens", "temperature", "top_p", "top_k", "min_p",
          "seed", "repeat_penalty", "stop", "grammar", "json_schema", "stream", "reply_to",
          "deadline_ms", "model", "meta", "logprobs", "lora", "chunk_ms");

  /** The contract version this library speaks. */
  public static final int VERSION = 1;

  private final Map<String, Object> fields;

  private Job(Map<String, Object> fields) {
    this.fields = Collections.unmodifiableMap(ordered(fields));
  }

  /** A job from a map of fields (as a decoder or a JSON reader holds it); nothing is checked. */
  public static Job fromMap(Map<String, ?> fields) {
    return new Job(new LinkedHashMap<>(fields));
  }

  /** A builder with v = 1 and nothing else. */
  public static Builder builder() {
    return new Builder();
  }

  /** A builder for a raw completion of {@code prompt}. */
  public static Builder prompt(String prompt) {
    return builder().prompt(prompt);
  }

  /** A builder for a chat job; see {@link #message}. */
  public static Builder messages(List<? extends Map<String, ?>> messages) {
    return builder().messages(messages);
  }

  /** One chat message: {@code {role, content}}. */
  public static Map<String, Object> message(String role, String content) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("role", role);
    m.put("content", content);
    return m;
  }

  /**
   * One LoRA adapter for {@link Builder#lora}: {@code {name, scale}} (scale null: the worker's
   * default, 1.0). A name the workers did not load ({@code llama.lora}) is answered {@code
   * invalid_field} at admission.
   */
  public static Map<String, Object> lora(String name, Number scale) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("name", name);
    if (scale != null) {
      m.put("scale", scale);
    }
    return m;
  }

  /** The fields: known ones in table order, then the others in the order given. */
  public Map<String, Object> toMap() {
    return fields;
  }

  /** One field's value, or null when it is absent. */
  public Object get(String field) {
    return fields.get(field);
  }

  /** The job id, or null when the client is to pick one. */
  public String id() {
    Object id = fields.get("id");
    return id instanceof String s ? s : null;
  }

  /** A builder holding this job's fields, to change some. */
  public Builder toBuilder() {
    Builder b = new Builder();
    b.fields.putAll(fields);
    return b;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Job j && fields.equals(j.fields);
  }

  @Override
  public int hashCode() {
    return fields.hashCode();
  }

  @Override
  public String toString() {
    return "Job" + fields;
  }

  /** The fields reordered: known ones in table order, then the rest as given. */
  static Map<String, Object> ordered(Map<String, ?> given) {
    Map<String, Object> out = new LinkedHashMap<>();
    for (String name : FIELDS) {
      if (given.containsKey(name)) {
        out.put(name, given.get(name));
      }
    }
    given.forEach(out::putIfAbsent);
    return out;
  }

  /** Sets job fields one by one; each setter returns the builder. null leaves a field out. */
  public static final class Builder {
    private final Map<String, Object> fields = new LinkedHashMap<>();

    private Builder() {
      fields.put("v", VERSION);
    }

    /** Sets any field by its wire name (also fields this version does not know). */
    public Builder field(String name, Object value) {
      if (value == null) {
        fields.remove(name);
      } else {
        fields.put(name, value);
      }
      return this;
    }

    /** The idempotency key, 1..128 UTF-8 bytes; the client picks a random one when unset. */
    public Builder id(String id) {
      return field("id", id);
    }

    /** Raw completion input (exactly one of prompt / messages). */
    public Builder prompt(String prompt) {
      return field("prompt", prompt);
    }

    /** Chat input: maps with role and content (exactly one of prompt / messages). */
    public Builder messages(List<? extends Map<String, ?>> messages) {
      return field("messages", messages);
    }

    /** At least 1; the worker caps it. */
    public Builder maxTokens(long maxTokens) {
      return field("max_tokens", maxTokens);
    }

    /** A number >= 0 (an Integer or Long is sent as a msgpack int, a Double as float64). */
    public Builder temperature(Number temperature) {
      return field("temperature", temperature);
    }

    /** A number in 0..1. */
    public Builder topP(Number topP) {
      return field("top_p", topP);
    }

    /** An integer >= 0. */
    public Builder topK(long topK) {
      return field("top_k", topK);
    }

    /** A number in 0..1. */
    public Builder minP(Number minP) {
      return field("min_p", minP);
    }

    /** Any signed 64-bit integer. */
    public Builder seed(long seed) {
      return field("seed", seed);
    }

    /** A number >= 0. */
    public Builder repeatPenalty(Number repeatPenalty) {
      return field("repeat_penalty", repeatPenalty);
    }

    /** At most 16 non-empty stop strings. */
    public Builder stop(List<String> stop) {
      return field("stop", stop);
    }

    /** A GBNF grammar (not with jsonSchema). */
    public Builder grammar(String grammar) {
      return field("grammar", grammar);
    }

    /** A JSON Schema for structured output, as maps and lists (not with grammar). */
    public Builder jsonSchema(Map<String, ?> jsonSchema) {
      return field("json_schema", jsonSchema);
    }

    /** Whether the worker publishes chunk replies (the worker's default: true). */
    public Builder stream(boolean stream) {
      return field("stream", stream);
    }

    /** The reply topic; the client sets its own when unset. */
    public Builder replyTo(String replyTo) {
      return field("reply_to", replyTo);
    }

    /** Absolute Unix time in ms after which the job is answered expired. */
    public Builder deadlineMs(long deadlineMs) {
      return field("deadline_ms", deadlineMs);
    }

    /** The model the job needs; a worker serving another answers model_mismatch. */
    public Builder model(String model) {
      return field("model", model);
    }

    /** Opaque data echoed in the terminal reply (anything msgpack can hold). */
    public Builder meta(Map<?, ?> meta) {
      return field("meta", meta);
    }

    /**
     * 0..20: the done reply (and each chunk) then carries every generated token's log-probability
     * and this many most likely alternatives ({@link Done#logprobs}); 0: none.
     */
    public Builder logprobs(int logprobs) {
      return field("logprobs", logprobs);
    }

    /**
     * LoRA adapters to apply, at most 16, no name twice: {@code List.of(Job.lora("style", 0.5))};
     * an empty list is the base model.
     */
    public Builder lora(List<? extends Map<String, ?>> adapters) {
      return field("lora", adapters);
    }

    /**
     * 0..60000: the longest streamed output waits to be merged into one chunk; 0: a chunk for every
     * piece llama-server streams. The worker's chunking.coalesce_ms when unset.
     */
    public Builder chunkMs(long chunkMs) {
      return field("chunk_ms", chunkMs);
    }

    /** The job; nothing is validated until it is encoded or sent. */
    public Job build() {
      return new Job(fields);
    }
  }
}
