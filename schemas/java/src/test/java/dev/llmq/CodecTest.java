// CodecTest.java — the codec beyond the vectors: the Job builder, Java-only value kinds, cancel
// messages, and reply edge cases.
package dev.llmq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class CodecTest {
  static Map<String, Object> job(Object... kv) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("v", 1);
    m.put("id", "j");
    m.put("prompt", "x");
    for (int i = 0; i < kv.length; i += 2) {
      m.put((String) kv[i], kv[i + 1]);
    }
    return m;
  }

  static void rejects(Object job, String code, String field) {
    InvalidJobException e = assertThrows(InvalidJobException.class, () -> Codec.validateJob(job));
    assertEquals(code, e.code(), e.getMessage());
    assertEquals(field, e.field(), e.getMessage());
  }

  @Test
  void builderRoundTripsThroughTheBytes() {
    Job job = Job.messages(List.of(Job.message("user", "hi"))).id("j-1").temperature(1.0)
        .stop(List.of("\n")).stream(false).meta(Map.of("k", new byte[] {0})).field("priority", 3)
        .build();
    byte[] data = Codec.encodeJob(job);
    Job back = Codec.decodeJob(data);
    assertEquals(List.of("v", "id", "messages", "temperature", "stop", "stream", "meta", "priority"),
        new ArrayList<>(back.toMap().keySet()));
    assertArrayEquals(data, Codec.encodeJob(back));
  }

  @Test
  void refusesWhatAWorkerRefuses() {
    Map<String, Object> nullTemperature = job();
    nullTemperature.put("temperature", null);
    rejects(nullTemperature, "invalid_field", "temperature");
    rejects(job("temperature", Double.POSITIVE_INFINITY), "invalid_field", "temperature");
    rejects(job("seed", BigInteger.ONE.shiftLeft(63)), "invalid_field", "seed");
    rejects(job("v", true), "unsupported_version", "v");
    rejects(job("prompt", "x\ud800"), "invalid_input", "prompt");
    rejects(job("stop", java.util.Collections.nCopies(17, "a")), "invalid_field", "stop");
    rejects(job("json_schema", Map.of("a", Double.NaN)), "invalid_field", "json_schema");
    rejects(job("reply_to", ".."), "invalid_field", "reply_to");
    Map<Object, Object> oddKey = new HashMap<>(job());
    oddKey.put(3, "y");
    rejects(oddKey, "malformed", null);
    rejects("not a map", "malformed", null);
    rejects(job("top_p", 1.0000001f), "invalid_field", "top_p");
  }

  @Test
  void acceptsNestingAtTheLimit() {
    Map<String, Object> meta = new HashMap<>();
    for (int i = 0; i < 30; i++) { // the job map, meta, and 30 more: 32 deep
      meta = Map.of("d", meta);
    }
    Codec.validateJob(job("meta", meta));
    rejects(job("meta", Map.of("d", meta)), "malformed", null);
  }

  @Test
  void cancelMessagesEncodeInSpecOrderAndAreChecked() {
    byte[] data = Codec.encodeCancel(new Cancel("job-1", "r1", "user asked"));
    assertEquals(new Cancel("job-1", "r1", "user asked"), Codec.decodeCancel(data));
    assertEquals(List.of("v", "type", "id", "run", "reason"),
        new ArrayList<>(((Map<?, ?>) readQuietly(data)).keySet()));
    assertNull(Codec.decodeCancel(Codec.encodeCancel(Cancel.of("j"))).run());
    assertThrows(IllegalArgumentException.class, () -> Codec.encodeCancel(Cancel.of("")));
    assertThrows(IllegalArgumentException.class, () -> Codec.encodeCancel(Cancel.of("x".repeat(129))));
    assertThrows(IllegalArgumentException.class, () -> Codec.encodeCancel(new Cancel("j", "", null)));
  }

  static Object readQuietly(byte[] data) {
    try {
      return Msgpack.read(data);
    } catch (Msgpack.MalformedException e) {
      throw new AssertionError(e);
    }
  }

  @Test
  void repliesIgnoreUnknownFieldsAndRejectWhatIsNotV1() {
    Map<String, Object> chunk = job();
    chunk.clear();
    chunk.putAll(Map.of("v", 1, "type", "chunk", "id", "a", "run", "r", "seq", 0, "text", ""));
    chunk.put("future", List.of(1, 2));
    assertEquals(new Chunk("a", "r", 0, ""), Codec.decodeReply(pack(chunk)));
    for (Object[] bad : new Object[][] {{"v", 2}, {"type", "tick"}, {"seq", 0.0}, {"seq", -1},
        {"text", new byte[] {1}}, {"id", "a".repeat(129)}, {"run", ""}}) {
      Map<String, Object> m = new LinkedHashMap<>(chunk);
      m.put((String) bad[0], bad[1]);
      assertThrows(InvalidReplyException.class, () -> Codec.decodeReply(pack(m)), bad[0] + "");
    }
    byte[] ok = pack(chunk);
    byte[] trailing = java.util.Arrays.copyOf(ok, ok.length + 1);
    assertThrows(InvalidReplyException.class, () -> Codec.decodeReply(trailing));
    assertThrows(InvalidReplyException.class, () -> Codec.decodeReply(new byte[0]));
  }

  @Test
  void anUnknownErrorCodeGoesByItsRetryable() {
    Map<String, Object> e = new LinkedHashMap<>(Map.of("v", 1, "type", "error", "id", "j",
        "run", "", "code", "gpu_on_fire", "message", "m", "retryable", true, "worker", "w"));
    assertEquals(true, ((ErrorReply) Codec.decodeReply(pack(e))).retryable());
    e.put("code", "expired");
    assertThrows(InvalidReplyException.class, () -> Codec.decodeReply(pack(e)));
  }

  static byte[] pack(Object value) {
    return new Msgpack.Writer().value(value).bytes();
  }
}
