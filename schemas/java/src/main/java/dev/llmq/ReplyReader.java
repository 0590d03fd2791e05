// ReplyReader.java — typed, checked access to the fields of one reply or heartbeat map.
package dev.llmq;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;
import java.util.regex.Pattern;

/**
 * Reads the fields of a chunk, done, error or heartbeat map (schemas/spec.md, "Replies" and
 * "Heartbeat"), checking each field's type; unknown fields are ignored (evolution rule). Every
 * failure is an {@link InvalidReplyException} naming the message type and the field.
 */
final class ReplyReader {
  /** Error codes whose replies say retryable = true (spec.md, error codes). */
  private static final Set<String> RETRYABLE =
      Set.of("model_mismatch", "backend_error", "backend_failed", "internal");

  /** Error codes whose replies say retryable = false (spec.md, error codes). */
  private static final Set<String> NOT_RETRYABLE =
      Set.of(
          "malformed", "unsupported_version", "invalid_id", "invalid_field", "invalid_input",
          "prompt_too_large", "reply_to_denied", "expired", "context_exceeded", "cancelled");

  /** The codes whose errors may carry partial_text (spec.md, error). */
  private static final Set<String> PARTIAL_TEXT_CODES = Set.of("expired", "cancelled");

  private static final Pattern CODE = Pattern.compile("[a-z][a-z_]*");
  private static final Object MISSING = new Object();

  private final Map<?, ?> m;
  private final String where;

  private ReplyReader(Map<?, ?> m, String where) {
    this.m = m;
    this.where = where;
  }

  /** The reply a checked v1 map holds; {@code type} is its (known) type field. */
  static Reply read(Map<?, ?> m, String type) {
    ReplyReader r = new ReplyReader(m, type);
    return switch (type) {
      case "chunk" -> r.chunk();
      case "done" -> r.done();
      case "error" -> r.error();
      case "heartbeat" -> r.heartbeat();
      default -> throw new InvalidReplyException("type: not a v1 reply type: " + type);
    };
  }

  private Chunk chunk() {
    return new Chunk(text("id", 1, JobRules.ID_MAX_BYTES), text("run", 1, 0), integer("seq", 0),
        text("text", 0, 0), logprobs());
  }

  private Done done() {
    ReplyReader u = sub("usage");
    ReplyReader t = sub("timings");
    return new Done(
        text("id", 1, JobRules.ID_MAX_BYTES),
        text("run", 1, 0),
        text("text", 0, 0),
        text("finish", 1, 0),
        new Done.Usage(u.integer("prompt_tokens", 0), u.integer("completion_tokens", 0)),
        new Done.Timings(t.number("queue_ms", null, null), t.number("ttft_ms", 0.0, null),
            t.number("gen_ms", 0.0, null), t.number("tokens_per_s", 0.0, null)),
        text("worker", 0, 0),
        meta(),
        logprobs());
  }

  private ErrorReply error() {
    Object code = value("code", x -> x instanceof String s && CODE.matcher(s).matches(),
        "a code name ([a-z][a-z_]*)");
    boolean retryable = (Boolean) value("retryable", x -> x instanceof Boolean, "a boolean");
    boolean known = RETRYABLE.contains(code) || NOT_RETRYABLE.contains(code);
    if (known && retryable != RETRYABLE.contains(code)) {
      throw new InvalidReplyException("error.retryable: must be " + RETRYABLE.contains(code)
          + " for code " + code);
    }
    String run = text("run", 0, 0);
    String partial = optionalText("partial_text");
    if (partial != null && (run.isEmpty() || (known && !PARTIAL_TEXT_CODES.contains(code)))) {
      throw new InvalidReplyException("error.partial_text: only for a job that ran (run not"
          + " empty), and of the known codes only " + PARTIAL_TEXT_CODES);
    }
    return new ErrorReply(text("id", 0, JobRules.ID_MAX_BYTES), run, (String) code,
        text("message", 0, 0), retryable, text("worker", 0, 0), partial, meta());
  }

  private Heartbeat heartbeat() {
    ReplyReader g = sub("gpu");
    ReplyReader c = sub("counters");
    Heartbeat.Gpu gpu = new Heartbeat.Gpu(
        g.text("backend", 1, 0),
        (String) g.value("name", x -> x == null || JobRules.textOk(x), "a string or nil"),
        g.nullableInteger("vram_total_bytes"),
        g.nullableInteger("vram_used_bytes"),
        g.nullableNumber("temp_edge_c", null, null),
        g.nullableNumber("temp_junction_c", null, null),
        g.nullableNumber("temp_mem_c", null, null),
        g.nullableNumber("power_w", 0.0, null),
        g.nullableNumber("busy_percent", 0.0, 100.0));
    return new Heartbeat(text("worker", 1, 0), text("host", 0, 0), text("model", 0, 0),
        text("state", 1, 0), integer("ts_ms", 0), gpu, integer("slots_busy", 0),
        integer("slots_total", 1),
        new Heartbeat.Counters(c.integer("jobs_done", 0), c.integer("jobs_failed", 0),
            c.integer("tokens", 0)));
  }

  // ---- typed fields ----------------------------------------------------------------------

  private Object value(String name, Predicate<Object> ok, String what) {
    Object x = m.containsKey(name) ? m.get(name) : MISSING;
    if (x == MISSING || !ok.test(x)) {
      throw new InvalidReplyException(where + "." + name + ": "
          + (x == MISSING ? "missing" : "must be " + what));
    }
    return x;
  }

  /** A UTF-8 str of minBytes..maxBytes bytes (maxBytes 0: no limit). */
  private String text(String name, int minBytes, int maxBytes) {
    Predicate<Object> ok = x -> {
      if (!JobRules.textOk(x)) {
        return false;
      }
      int n = Msgpack.utf8((String) x).length;
      return n >= minBytes && (maxBytes == 0 || n <= maxBytes);
    };
    String what = (minBytes > 0 ? "a non-empty string" : "a string")
        + (maxBytes > 0 ? " of at most " + maxBytes + " bytes" : "");
    return (String) value(name, ok, what);
  }

  private long integer(String name, long minimum) {
    Object x = value(name, v -> JobRules.isInt(v) && ((Number) v).longValue() >= minimum,
        "an integer >= " + minimum);
    return ((Number) x).longValue();
  }

  private Long nullableInteger(String name) {
    Object x = value(name, v -> v == null || (JobRules.isInt(v) && ((Number) v).longValue() >= 0),
        "an integer >= 0 or nil");
    return x == null ? null : ((Number) x).longValue();
  }

  private double number(String name, Double minimum, Double maximum) {
    Double d = nullableNumber(name, minimum, maximum, false);
    return d;
  }

  private Double nullableNumber(String name, Double minimum, Double maximum) {
    return nullableNumber(name, minimum, maximum, true);
  }

  private Double nullableNumber(String name, Double min, Double max, boolean nullable) {
    String what = "a number" + (min != null ? " >= " + min : "") + (max != null ? " <= " + max : "")
        + (nullable ? " or nil" : "");
    Object x = value(name, v -> (nullable && v == null) || (JobRules.isNumber(v)
        && (min == null || ((Number) v).doubleValue() >= min)
        && (max == null || ((Number) v).doubleValue() <= max)), what);
    return x == null ? null : ((Number) x).doubleValue();
  }

  private String optionalText(String name) {
    return m.containsKey(name) ? (String) value(name, JobRules::textOk, "a string") : null;
  }

  /** The optional compact logprobs array (spec.md, "Log-probabilities"); null when absent. */
  private List<TokenLogprob> logprobs() {
    if (!m.containsKey("logprobs")) {
      return null;
    }
    List<TokenLogprob> out = new ArrayList<>();
    Object x = m.get("logprobs");
    boolean ok = x instanceof List<?>;
    for (Object entry : ok ? (List<?>) x : List.of()) {
      TokenLogprob e = entry instanceof List<?> l && l.size() == 3 ? tokenLogprob(l) : null;
      if (e == null) {
        ok = false;
        break;
      }
      out.add(e);
    }
    if (!ok) {
      throw new InvalidReplyException(where + ".logprobs: must be an array of "
          + "[token, logprob <= 0, [[token, logprob], ...]]");
    }
    return out;
  }

  /** [token, logprob, [[token, logprob], ...]], or null when it is not one. */
  private static TokenLogprob tokenLogprob(List<?> entry) {
    TokenLogprob.Alternative chosen = alternative(entry.subList(0, 2));
    if (chosen == null || !(entry.get(2) instanceof List<?> top)) {
      return null;
    }
    List<TokenLogprob.Alternative> alts = new ArrayList<>(top.size());
    for (Object pair : top) {
      TokenLogprob.Alternative a = pair instanceof List<?> p && p.size() == 2 ? alternative(p) : null;
      if (a == null) {
        return null;
      }
      alts.add(a);
    }
    return new TokenLogprob(chosen.token(), chosen.logprob(), alts);
  }

  /** A [token, logprob] pair: a UTF-8 str or a bin, and a number <= 0; null otherwise. */
  private static TokenLogprob.Alternative alternative(List<?> pair) {
    Object token = pair.get(0);
    Object logprob = pair.get(1);
    if (!JobRules.isNumber(logprob) || ((Number) logprob).doubleValue() > 0) {
      return null;
    }
    double lp = ((Number) logprob).doubleValue();
    if (token instanceof byte[] b) {
      return new TokenLogprob.Alternative(TokenLogprob.Token.ofBytes(b), lp);
    }
    return JobRules.textOk(token)
        ? new TokenLogprob.Alternative(TokenLogprob.Token.of((String) token), lp) : null;
  }

  @SuppressWarnings("unchecked")
  private Map<Object, Object> meta() {
    if (!m.containsKey("meta")) {
      return null;
    }
    return (Map<Object, Object>) value("meta", x -> x instanceof Map, "a map");
  }

  private ReplyReader sub(String name) {
    Map<?, ?> sub = (Map<?, ?>) value(name, x -> x instanceof Map, "a map");
    return new ReplyReader(sub, where + "." + name);
  }
}
