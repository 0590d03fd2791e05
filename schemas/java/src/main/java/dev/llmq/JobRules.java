// JobRules.java — the worker's decode-time verdict on a job, in the order of spec.md's field table.
package dev.llmq;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Checks a job map the way a v1 worker decodes it (schemas/spec.md, "Job"): types, ranges,
 * exactly one of prompt / messages, id length, nesting. The first broken rule in table order
 * wins, whatever the order of the keys. Admission (allowlist, prompt size, model, deadline) needs
 * the worker's policy and clock and is left to the worker.
 */
final class JobRules {
  static final int ID_MAX_BYTES = 128;
  static final int STOP_MAX = 16;
  static final int TOPIC_MAX = 249;
  static final int LOGPROBS_MAX = 20;
  static final int LORA_MAX = 16;
  static final int CHUNK_MS_MAX = 60000;
  private static final Pattern TOPIC = Pattern.compile("[a-zA-Z0-9._-]{1," + TOPIC_MAX + "}");
  private static final BigInteger INT64_MIN = BigInteger.valueOf(Long.MIN_VALUE);
  private static final BigInteger INT64_MAX = BigInteger.valueOf(Long.MAX_VALUE);
  private static final BigInteger UINT64_MAX = BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE);

  private final Map<?, ?> m;
  private final Set<?> repeated;

  private JobRules(Map<?, ?> m) {
    this.m = m;
    this.repeated = m instanceof Msgpack.DecodedMap d ? d.repeated() : Set.of();
  }

  /** Throws the verdict when a v1 worker would reject {@code job} while decoding it. */
  static void validate(Object job) {
    if (!(job instanceof Map<?, ?> m)) {
      throw reject("malformed", null, null, "a job must be a msgpack map");
    }
    boolean oddKeys = m instanceof Msgpack.DecodedMap d && d.oddKeys();
    if (oddKeys || !m.keySet().stream().allMatch(k -> k instanceof String)) {
      throw reject("malformed", null, null, "job map keys must be strings");
    }
    if (tooDeep(m, 1)) {
      throw reject("malformed", null, null, "containers nested over " + Msgpack.NESTING_MAX + " deep");
    }
    new JobRules(m).check();
  }

  private void check() {
    checkVersion();
    checkId();
    checkInput();
    checkInt("max_tokens", 1L);
    checkNumber("temperature", null);
    checkNumber("top_p", 1);
    checkInt("top_k", 0L);
    checkNumber("min_p", 1);
    checkInt("seed", null);
    checkNumber("repeat_penalty", null);
    checkStop();
    checkText("grammar", false);
    checkJsonSchema();
    Object stream = get("stream");
    if (stream != MISSING && !(stream instanceof Boolean)) {
      throw reject("invalid_field", "stream", null, "must be a boolean");
    }
    Object replyTo = get("reply_to");
    if (replyTo != MISSING && !topicName(replyTo)) {
      throw reject("invalid_field", "reply_to", null,
          "must be a Kafka topic name (1.." + TOPIC_MAX + " of [a-zA-Z0-9._-])");
    }
    checkInt("deadline_ms", null);
    checkText("model", true);
    Object meta = get("meta");
    if (meta != MISSING && !(meta instanceof Map)) {
      throw reject("invalid_field", "meta", null, "must be a map");
    }
    checkRange("logprobs", LOGPROBS_MAX);
    checkLora();
    checkRange("chunk_ms", CHUNK_MS_MAX);
  }

  // ---- the verdict ----------------------------------------------------------------------

  private static final Object MISSING = new Object();

  /** The verdict; the message starts with {@code label} (default: the field). */
  static InvalidJobException reject(String code, String field, String label, String problem) {
    String l = label != null ? label : field;
    return new InvalidJobException(code, field, l != null ? l + ": " + problem : problem);
  }

  /** The field's value, or MISSING; a field given twice is invalid_field. */
  private Object get(String name) {
    if (repeated.contains(name)) {
      throw reject("invalid_field", name, null, "given more than once");
    }
    return m.containsKey(name) ? m.get(name) : MISSING;
  }

  // ---- v, id, input ----------------------------------------------------------------------

  private void checkVersion() {
    Object v = get("v");
    if (v == MISSING) {
      throw reject("unsupported_version", "v", null, "missing; this client speaks v " + Job.VERSION);
    }
    if (!isInt(v) || toBig(v).compareTo(BigInteger.valueOf(Job.VERSION)) != 0) {
      throw reject("unsupported_version", "v", null, "must be the integer " + Job.VERSION);
    }
  }

  private void checkId() {
    Object id = get("id");
    if (id == MISSING) {
      throw reject("invalid_id", "id", null, "missing");
    }
    String problem = textProblem(id, true);
    if (problem != null) {
      throw reject("invalid_id", "id", null, problem);
    }
    int n = Msgpack.utf8((String) id).length;
    if (n > ID_MAX_BYTES) {
      throw reject("invalid_id", "id", null,
          "must be at most " + ID_MAX_BYTES + " bytes (got " + n + ")");
    }
  }

  private void checkInput() {
    Object prompt = get("prompt");
    Object messages = get("messages");
    if (prompt != MISSING && messages != MISSING) {
      throw reject("invalid_input", "prompt", "prompt, messages", "give one, not both");
    }
    if (prompt != MISSING) {
      String problem = textProblem(prompt, false);
      if (problem != null) {
        throw reject("invalid_input", "prompt", null, problem);
      }
    } else if (messages != MISSING) {
      if (!(messages instanceof List<?> list) || list.isEmpty()) {
        throw reject("invalid_input", "messages", null, "must be a non-empty array of maps");
      }
      for (int i = 0; i < list.size(); i++) {
        checkMessage(i, list.get(i));
      }
    } else {
      throw reject("invalid_input", "prompt", "prompt, messages", "one of them is required");
    }
  }

  private static void checkMessage(int i, Object msg) {
    if (!(msg instanceof Map<?, ?> map)) {
      throw reject("invalid_input", "messages", "messages[" + i + "]", "must be a map");
    }
    Set<?> rep = map instanceof Msgpack.DecodedMap d ? d.repeated() : Set.of();
    for (String key : List.of("role", "content")) {
      String where = "messages[" + i + "]." + key;
      if (rep.contains(key)) {
        throw reject("invalid_input", "messages", where, "given more than once");
      }
      if (!map.containsKey(key)) {
        throw reject("invalid_input", "messages", where, "missing");
      }
      String problem = textProblem(map.get(key), key.equals("role"));
      if (problem != null) {
        throw reject("invalid_input", "messages", where, problem);
      }
    }
  }

  // ---- optional fields -------------------------------------------------------------------

  private void checkInt(String name, Long minimum) {
    Object x = get(name);
    if (x == MISSING || (isInt(x) && (minimum == null || toBig(x).longValue() >= minimum))) {
      return;
    }
    throw reject("invalid_field", name, null,
        minimum == null ? "must be a signed 64-bit integer" : "must be an integer >= " + minimum);
  }

  private void checkRange(String name, long maximum) {
    Object x = get(name);
    if (x == MISSING || (isInt(x) && toBig(x).signum() >= 0
        && toBig(x).compareTo(BigInteger.valueOf(maximum)) <= 0)) {
      return;
    }
    throw reject("invalid_field", name, null, "must be an integer between 0 and " + maximum);
  }

  private void checkLora() {
    Object lora = get("lora");
    if (lora == MISSING) {
      return;
    }
    if (!(lora instanceof List<?> list)) {
      throw reject("invalid_field", "lora", null, "must be an array of {name, scale} maps");
    }
    if (list.size() > LORA_MAX) {
      throw reject("invalid_field", "lora", null,
          "at most " + LORA_MAX + " {name, scale} maps (got " + list.size() + ")");
    }
    Set<Object> names = new java.util.HashSet<>();
    for (int i = 0; i < list.size(); i++) {
      String where = "lora[" + i + "]";
      if (!(list.get(i) instanceof Map<?, ?> entry)) {
        throw reject("invalid_field", "lora", where, "must be a map");
      }
      Set<?> rep = entry instanceof Msgpack.DecodedMap d ? d.repeated() : Set.of();
      if (rep.contains("name") || rep.contains("scale")) {
        throw reject("invalid_field", "lora", where, "a key given more than once");
      }
      String problem = entry.containsKey("name") ? textProblem(entry.get("name"), true) : "missing";
      if (problem != null) {
        throw reject("invalid_field", "lora", where + ".name", problem);
      }
      if (entry.containsKey("scale") && !isNumber(entry.get("scale"))) {
        throw reject("invalid_field", "lora", where + ".scale", "must be a number");
      }
      if (!names.add(entry.get("name"))) {
        throw reject("invalid_field", "lora", where, "adapter " + entry.get("name") + " given twice");
      }
    }
  }

  private void checkNumber(String name, Integer maximum) {
    Object x = get(name);
    if (x == MISSING || (isNumber(x) && inRange(x, maximum))) {
      return;
    }
    throw reject("invalid_field", name, null,
        maximum == null ? "must be a number >= 0" : "must be a number between 0 and " + maximum);
  }

  private static boolean inRange(Object x, Integer maximum) {
    BigDecimal d =
        x instanceof Double || x instanceof Float
            ? new BigDecimal(((Number) x).doubleValue())
            : new BigDecimal(toBig(x));
    return d.signum() >= 0 && (maximum == null || d.compareTo(BigDecimal.valueOf(maximum)) <= 0);
  }

  private void checkText(String name, boolean nonEmpty) {
    Object x = get(name);
    String problem = x == MISSING ? null : textProblem(x, nonEmpty);
    if (problem != null) {
      throw reject("invalid_field", name, null, problem);
    }
  }

  private void checkStop() {
    Object stop = get("stop");
    if (stop == MISSING) {
      return;
    }
    if (!(stop instanceof List<?> list)) {
      throw reject("invalid_field", "stop", null, "must be an array of strings");
    }
    if (list.size() > STOP_MAX) {
      throw reject("invalid_field", "stop", null,
          "at most " + STOP_MAX + " strings (got " + list.size() + ")");
    }
    for (int i = 0; i < list.size(); i++) {
      String problem = textProblem(list.get(i), true);
      if (problem != null) {
        throw reject("invalid_field", "stop", "stop[" + i + "]", problem);
      }
    }
  }

  private void checkJsonSchema() {
    Object schema = get("json_schema");
    if (schema == MISSING) {
      return;
    }
    if (!(schema instanceof Map)) {
      throw reject("invalid_field", "json_schema", null, "must be a map");
    }
    String problem = jsonProblem(schema);
    if (problem != null) {
      throw reject("invalid_field", "json_schema", null, problem);
    }
    if (m.containsKey("grammar")) {
      throw reject("invalid_input", "grammar", "grammar, json_schema", "give one, not both");
    }
  }

  // ---- value predicates ------------------------------------------------------------------

  /** A Java integer type, or a BigInteger, within the signed 64-bit range. */
  static boolean isInt(Object x) {
    if (x instanceof Long || x instanceof Integer || x instanceof Short || x instanceof Byte) {
      return true;
    }
    return x instanceof BigInteger b && b.compareTo(INT64_MIN) >= 0 && b.compareTo(INT64_MAX) <= 0;
  }

  /** A finite float, or an integer msgpack can carry (up to 2^64-1). */
  static boolean isNumber(Object x) {
    if (x instanceof Double || x instanceof Float) {
      return Double.isFinite(((Number) x).doubleValue());
    }
    return isInt(x)
        || (x instanceof BigInteger b && b.compareTo(INT64_MIN) >= 0 && b.compareTo(UINT64_MAX) <= 0);
  }

  private static BigInteger toBig(Object x) {
    return x instanceof BigInteger b ? b : BigInteger.valueOf(((Number) x).longValue());
  }

  /** UTF-8 text without NUL: a String with no NUL and no unpaired surrogate. */
  static boolean textOk(Object x) {
    return x instanceof String s && s.indexOf('\0') < 0 && Msgpack.utf8(s) != null;
  }

  /** Why x is not an acceptable string, or null when it is. */
  static String textProblem(Object x, boolean nonEmpty) {
    boolean isText = x instanceof String || x instanceof Msgpack.BadText;
    if (!isText || (nonEmpty && x instanceof String s && s.isEmpty())) {
      return nonEmpty ? "must be a non-empty string" : "must be a string";
    }
    return textOk(x) ? null : "must be valid UTF-8 without NUL bytes";
  }

  private static boolean topicName(Object x) {
    return x instanceof String s && TOPIC.matcher(s).matches() && !s.equals(".") && !s.equals("..");
  }

  /** Whether containers nest more than NESTING_MAX deep, {@code value} being at {@code depth}. */
  static boolean tooDeep(Object value, int depth) {
    if (value instanceof Map<?, ?> map) {
      if (depth > Msgpack.NESTING_MAX) {
        return true;
      }
      for (Map.Entry<?, ?> e : map.entrySet()) {
        if (tooDeep(e.getKey(), depth + 1) || tooDeep(e.getValue(), depth + 1)) {
          return true;
        }
      }
    } else if (value instanceof Collection<?> c) {
      if (depth > Msgpack.NESTING_MAX) {
        return true;
      }
      for (Object item : c) {
        if (tooDeep(item, depth + 1)) {
          return true;
        }
      }
    }
    return false;
  }

  /** Why a json_schema value has no JSON meaning, or null when it has one. */
  static String jsonProblem(Object value) {
    if (value == null || value instanceof Boolean || value instanceof String && textOk(value)) {
      return null;
    }
    if (value instanceof String || value instanceof Msgpack.BadText) {
      return "strings must be valid UTF-8 without NUL bytes";
    }
    if (value instanceof Double || value instanceof Float) {
      return isNumber(value) ? null : "NaN and infinity have no JSON meaning";
    }
    if (value instanceof Number) {
      return isInt(value) ? null : "integer out of the signed 64-bit range";
    }
    if (value instanceof List<?> list) {
      return list.stream().map(JobRules::jsonProblem).filter(p -> p != null).findFirst().orElse(null);
    }
    if (value instanceof Map<?, ?> map) {
      if (map instanceof Msgpack.DecodedMap d && !d.repeated().isEmpty()) {
        return "a map key is given more than once";
      }
      for (Map.Entry<?, ?> e : map.entrySet()) {
        if (!textOk(e.getKey())) {
          return "map keys must be UTF-8 strings";
        }
        String p = jsonProblem(e.getValue());
        if (p != null) {
          return p;
        }
      }
      return null;
    }
    return "bin and ext values have no JSON meaning";
  }
}
