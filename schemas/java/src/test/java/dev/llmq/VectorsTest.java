// VectorsTest.java — the codec against every vector in schemas/vectors: valid jobs encode to the
// committed bytes, valid replies decode and re-encode to them, and every file gets its verdict.
package dev.llmq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

class VectorsTest {
  static final Path VECTORS = Path.of(System.getProperty("llmq.vectors", "../vectors"));
  /** Written with a float32 on purpose; this library writes float64. */
  static final Set<String> FLOAT32 = Set.of("job_ok_float32");

  /**
   * The features added to v1 after its first release (index.json "features") that this library
   * implements: all of them. An addition is judged when it requires only these; the others would
   * be skipped and counted (and fail the coverage test). prompt_bytes_roles, reply_routing and
   * utf8_cut change only what a worker does at admission or how it shortens messages: the decode
   * verdicts a producer reaches are the same.
   */
  static final Set<String> FEATURES =
      Set.of("cancel", "partial_text", "prompt_bytes_roles", "reply_routing", "utf8_cut",
          "logprobs", "lora", "chunk_ms");

  @SuppressWarnings("unchecked")
  static final Map<String, Object> INDEX = (Map<String, Object>) Json.parse(read("index.json"));

  @SuppressWarnings("unchecked")
  static final List<Map<String, Object>> ADDITIONS =
      (List<Map<String, Object>>) INDEX.getOrDefault("additions", List.of());

  /** Every vector, and every addition whose required features this library implements. */
  @SuppressWarnings("unchecked")
  static final List<Map<String, Object>> ALL = Stream.concat(
          ((List<Map<String, Object>>) INDEX.get("vectors")).stream(),
          ADDITIONS.stream().filter(v -> FEATURES.containsAll((List<String>) v.get("requires"))))
      .toList();

  static String read(String name) {
    try {
      return Files.readString(VECTORS.resolve(name), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException("vectors not found in " + VECTORS.toAbsolutePath(), e);
    }
  }

  static byte[] raw(Map<String, Object> v) {
    try {
      return Files.readAllBytes(VECTORS.resolve((String) v.get("file")));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The JSON meaning, as the Java values a producer would hold. */
  static Object meaning(Map<String, Object> v) {
    return Json.parse(read((String) v.get("json")));
  }

  @SuppressWarnings("unchecked")
  static Map<String, Object> jobMeaning(Map<String, Object> v) {
    return (Map<String, Object>) meaning(v);
  }

  static boolean valid(Map<String, Object> v) {
    return Boolean.TRUE.equals(v.get("valid"));
  }

  /** Valid jobs and jobs rejected only at admission pass the client's validation. */
  static boolean passesDecoding(Map<String, Object> v) {
    return valid(v) || "admit".equals(v.get("stage"));
  }

  static Stream<DynamicTest> each(Predicate<Map<String, Object>> which, String what,
      java.util.function.Consumer<Map<String, Object>> check) {
    return ALL.stream().filter(which)
        .map(v -> DynamicTest.dynamicTest(what + " " + v.get("name"), () -> check.accept(v)));
  }

  static Predicate<Map<String, Object>> kind(String k) {
    return v -> k.equals(v.get("kind"));
  }

  @Test
  @SuppressWarnings("unchecked")
  void additionsBeyondTheseFeaturesAreSkippedAndCounted() {
    Map<String, Integer> skipped = new java.util.TreeMap<>();
    for (Map<String, Object> v : ADDITIONS) {
      for (String f : (List<String>) v.get("requires")) {
        if (!FEATURES.contains(f)) {
          skipped.merge(f, 1, Integer::sum);
        }
      }
    }
    System.out.println("vectors: " + ALL.size() + " judged; additions skipped by missing feature: "
        + (skipped.isEmpty() ? "none" : skipped));
    assertEquals(Map.of(), skipped);
    assertEquals(FEATURES, ((Map<String, Object>) INDEX.get("features")).keySet());
  }

  @Test
  void everyVectorIsCovered() {
    Set<String> kinds = Set.of("job", "chunk", "done", "error", "heartbeat", "cancel");
    for (Map<String, Object> v : ALL) {
      assertTrue(kinds.contains(v.get("kind")), "a vector kind this test does not know: " + v);
    }
    assertTrue(ALL.stream().filter(kind("job")).filter(VectorsTest::valid).count() >= 15);
  }

  @TestFactory
  Stream<DynamicTest> validJobsEncodeToTheVectorBytes() {
    return each(kind("job").and(VectorsTest::valid).and(v -> !FLOAT32.contains(v.get("name"))),
        "encode", v -> {
          Map<String, ?> job = v.containsKey("json") ? jobMeaning(v) : Codec.decodeJob(raw(v)).toMap();
          assertEquals(HexFormat.of().formatHex(raw(v)), HexFormat.of().formatHex(Codec.encodeJob(job)));
        });
  }

  @TestFactory
  Stream<DynamicTest> knownFieldsGoInTableOrderWhateverTheMapOrder() {
    return each(kind("job").and(VectorsTest::valid).and(v -> v.containsKey("json")), "order", v -> {
      // Known fields reversed; unknown ones keep their order (they are sent as given).
      Map<String, Object> job = jobMeaning(v);
      List<String> known = new ArrayList<>(job.keySet());
      known.retainAll(Job.FIELDS);
      Collections.reverse(known);
      Map<String, Object> reversed = new LinkedHashMap<>();
      known.forEach(k -> reversed.put(k, job.get(k)));
      job.forEach(reversed::putIfAbsent);
      assertArrayEquals(Codec.encodeJob(job), Codec.encodeJob(reversed));
    });
  }

  @Test
  void aFloat32JobIsSentWithFloat64() {
    Map<String, Object> v = ALL.stream().filter(x -> FLOAT32.contains(x.get("name"))).findFirst().get();
    byte[] out = Codec.encodeJob(Codec.decodeJob(raw(v)));
    assertFalse(java.util.Arrays.equals(out, raw(v)));
    assertTrue(HexFormat.of().formatHex(out).contains("cb3fe0000000000000"), "0.5 as float64");
  }

  static void expectVerdict(Map<String, Object> v, Runnable run) {
    if (passesDecoding(v)) {
      run.run();
      return;
    }
    InvalidJobException e = assertThrows(InvalidJobException.class, run::run);
    assertEquals(v.get("expected_code"), e.code(), e.getMessage());
    assertEquals(v.get("field"), e.field(), e.getMessage());
    if (v.containsKey("field")) {
      assertTrue(e.getMessage().startsWith((String) v.get("field")), e.getMessage());
    }
  }

  @TestFactory
  Stream<DynamicTest> decodeJobGivesTheWorkersVerdict() {
    return each(kind("job"), "decodeJob", v -> expectVerdict(v, () -> {
      Job job = Codec.decodeJob(raw(v));
      assertFalse(job.id().isEmpty());
      if (v.containsKey("json")) {
        assertArrayEquals(Codec.encodeJob(jobMeaning(v)), Codec.encodeJob(job));
      }
    }));
  }

  @TestFactory
  Stream<DynamicTest> validateJobOnTheJsonMeaningGivesTheSameVerdict() {
    // Every job the client validates before sending: the JSON meaning as Java values.
    return each(kind("job").and(v -> v.containsKey("json")), "validateJob",
        v -> expectVerdict(v, () -> Codec.validateJob(meaning(v))));
  }

  @TestFactory
  Stream<DynamicTest> cancelsDecodeAndEncodeByteForByte() {
    return each(kind("cancel"), "decodeCancel", v -> {
      if (!valid(v)) {
        assertThrows(InvalidReplyException.class, () -> Codec.decodeCancel(raw(v)));
        return;
      }
      Cancel c = Codec.decodeCancel(raw(v));
      Map<String, Object> m = jobMeaning(v);
      assertEquals(new Cancel((String) m.get("id"), (String) m.get("run"), (String) m.get("reason")), c);
      if (m.keySet().stream().allMatch(k -> Set.of("v", "type", "id", "run", "reason").contains(k))) {
        assertEquals(HexFormat.of().formatHex(raw(v)), HexFormat.of().formatHex(Codec.encodeCancel(c)));
      }
    });
  }

  @TestFactory
  Stream<DynamicTest> repliesDecodeAndReencodeByteForByte() {
    return each(kind("job").negate().and(kind("cancel").negate()), "decodeReply", v -> {
      if (!valid(v)) {
        assertThrows(InvalidReplyException.class, () -> Codec.decodeReply(raw(v)));
        return;
      }
      Reply reply = Codec.decodeReply(raw(v));
      assertEquals(v.get("kind"), reply.type());
      if (v.containsKey("json")) {
        assertEquals(meaning(v), ReplyMaps.toMap(reply));
      }
      assertEquals(HexFormat.of().formatHex(raw(v)), HexFormat.of().formatHex(Codec.encodeReply(reply)));
    });
  }
}
